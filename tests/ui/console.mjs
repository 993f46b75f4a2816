// Drives fsmd's web console in headless Chromium (Debian's /usr/bin/chromium) with playwright-core.
// Run by tests/console_test.go, which starts the server, seeds it and passes what it made in
// FSMD_CONSOLE_FIXTURE (JSON). Each step checks what the page shows, and writes a screenshot to
// fixture.screenshots. Any page error, console error or dialog (alert) fails the run.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const fx = JSON.parse(process.env.FSMD_CONSOLE_FIXTURE || "{}");
assert.ok(fx.url, "FSMD_CONSOLE_FIXTURE is not set: run this through go test ./tests -run TestConsole");
mkdirSync(fx.screenshots, { recursive: true });

// The flags this machine's Chromium needs (see the env notes): no sandbox as root, and no
// background connections, which the closed network refuses.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

const problems = [];
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => {
    // A 401 is the console asking for a key, a 404 a test that looks for what is not there, a 409
    // an event the test sends to see it refused, and a 422 a repair the test sends to see it refused.
    if (m.type() === "error" && !/status of (40[149]|422)/.test(m.text())) problems.push("console error: " + m.text());
  });
  page.on("dialog", async (d) => {
    problems.push("a dialog opened: " + d.message());
    await d.dismiss();
  });
  // Generous: CI runs this beside the other end-to-end tests on two cores, where one page's load
  // event (Mermaid is 3 MB of script) took more than 15 s. A wait that fails still names its step.
  page.setDefaultTimeout(30000);
  page.setDefaultNavigationTimeout(60000);
  return page;
}

let shot = 0;
async function screenshot(page, name) {
  const file = `${fx.screenshots}/${String(++shot).padStart(2, "0")}-${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  console.log("screenshot", file);
}

async function step(name, fn) {
  const before = problems.length;
  try {
    await fn();
  } catch (e) {
    problems.push(`${name}: ${e.message}`);
  }
  console.log(problems.length === before ? "ok  " : "FAIL", name);
}

const page = await newPage();
const text = (sel) => page.locator(sel).innerText();

await step("the key is asked for, entered once, and the definitions are listed", async () => {
  await page.goto(fx.url + "/ui/");
  await page.locator("#key").waitFor({ state: "visible" });
  assert.match(await text("#key-why"), /needs an API key/);
  await page.fill("#key-input", fx.key);
  await page.click("#key-form button");
  await page.locator("main table").waitFor();
  const body = await text("main");
  for (const name of ["order", "approval", "loan", "claim"]) assert.ok(body.includes(name), `no ${name} in:\n${body}`);
  assert.equal(await page.locator("#key").isHidden(), true);
  assert.match(await text("#keystate"), /key set/);
  await screenshot(page, "definitions");
});

await step("a definition: its diagram with live counts, the transitions heatmap, versions", async () => {
  await page.click("main a:text-is('order')");
  await page.waitForURL(/\/ui\/definitions\/order$/);
  await page.locator("#diagram svg").waitFor();
  // Running instances per state on the diagram: order-2 shipped, order-3 paid, order-4
  // payment_failed, order-5 and order-pay awaiting_payment.
  const svg = await text("#diagram");
  for (const label of ["1 running", "2 running"]) assert.ok(svg.includes(label), `no "${label}" in the diagram:\n${svg}`);
  const heated = await page.locator("#diagram g.node.heat1, #diagram g.node.heat2, #diagram g.node.heat3, #diagram g.node.heat4").count();
  assert.ok(heated >= 4, `${heated} states coloured by their running instances, want 4 or more`);
  assert.ok(/pay \(1\) · 3/.test(svg), `no count on the first pay transition (pay (1) · 3) in:\n${svg}`);
  assert.ok(/ship · 2/.test(svg), `no count on the ship transition (ship · 2) in:\n${svg}`);
  const stats = await text("#stats");
  assert.match(stats, /awaiting_payment\s+2/);
  assert.match(stats, /guard_rejected 1/);
  assert.match(stats, /invalid_transition 1/);
  assert.match(await text(".versions"), /v1/);
  await page.locator(".live").filter({ hasText: "updated" }).waitFor();
  await screenshot(page, "definition");
});

await step("a state in the diagram lists its instances", async () => {
  await page.click("#diagram g.node[data-state='payment_failed']");
  await page.waitForURL(/\/ui\/instances\?definition=order&state=payment_failed/);
  await page.locator("main table").waitFor();
  assert.match(await text("main table"), /order-4/);
});

await step("find an instance by id: state highlighted, context, history", async () => {
  await page.fill("#find-id", fx.order);
  await page.click("#find button");
  await page.waitForURL(new RegExp("/ui/instances/" + fx.order + "$"));
  await page.locator("#diagram svg").waitFor();
  assert.equal(await text("#instance-id"), fx.order);
  assert.equal(await text("#instance-state"), fx.order_state);
  const current = page.locator("#diagram g.node.current");
  assert.equal(await current.count(), 1, "one state is the current one");
  assert.equal(await current.getAttribute("data-state"), fx.order_state);
  assert.equal(await page.locator("#history ol.timeline > li:not(.created)").count(), fx.order_events);
  assert.match(await text("#history ol.timeline > li:last-child"), /created/);
  assert.match(await text("#history"), /deliver\s+shipped → delivered/);
  assert.match(await text("main"), /JD0001/); // the context
  // An order neither starts children nor is one.
  assert.equal(await page.locator("#children, #parent").count(), 0, "an order shows children or a parent");
  await screenshot(page, "instance");
});

await step("an instance's pending timers; the key is kept across a reload", async () => {
  await page.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.pending));
  await page.locator("#timers table").waitFor();
  assert.match(await text("#timers"), /payment_overdue\s+\S+ \S+\s+in /);
  assert.equal(await page.locator("#key").isHidden(), true, "the key was asked for again");
  await screenshot(page, "timers");
});

await step("script in an instance id and in a payload stays text", async () => {
  await page.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.xss));
  await page.locator("#diagram svg").waitFor();
  assert.equal(await text("#instance-id"), fx.xss);
  await page.locator("#history details").first().evaluate((d) => (d.open = true));
  await page.locator("#history").hover();
  assert.match(await text("#history"), /<\/pre><b onmouseover=/);
  assert.equal(await page.evaluate(() => window.__xss), undefined, "script from the page's data ran");
  assert.equal(await page.locator("main img, main script, main b").count(), 0, "markup from the data became elements");
  await screenshot(page, "escaped");
  // An id that is not there: the answer (404) names it, as text.
  await page.goto(fx.url + "/ui/instances/" + encodeURIComponent("<script>window.__xss=4</script>nope"));
  await page.locator(".error").waitFor();
  assert.match(await text(".error"), /Not found/);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
});

await step("a read key sees no form and no button to act", async () => {
  await page.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.pending));
  await page.locator("#diagram svg").waitFor();
  assert.match(await text("#instance-state"), /awaiting_payment/);
  assert.equal(await page.locator("#actions, main form, main button:text-is('Send'), main button:text-is('Explain')").count(), 0,
    "a read key is offered to act");
});

// The controls of an admin key (docs/operators.md): none of them for a read key, on the pages that
// have them for an admin.
const operating = "#bulk, #bulk-form, #admin, #op-suspend, #op-resume, #op-terminate, #op-repair, button.redrive";

await step("a read key sees no bulk, repair, suspend, terminate or re-drive", async () => {
  await page.goto(fx.url + "/ui/definitions/loan");
  await page.locator("#diagram svg").waitFor();
  assert.equal(await page.locator(operating).count(), 0, "a read key is offered to operate on a definition");
  assert.equal(await page.locator("main button, main form").count(), 0);
  await page.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.pause_loan));
  await page.locator("#diagram svg").waitFor();
  assert.equal(await page.locator(operating).count(), 0, "a read key is offered to operate on an instance");
  assert.equal(await page.locator("main button, main form").count(), 0);
  await page.click("header nav a:text-is('Dead letters')");
  await page.waitForURL(/\/ui\/dead-letters$/);
  await page.locator("#dead-letters table").waitFor();
  assert.match(await text("#dead-letters"), new RegExp(fx.dead_letter + "[\\s\\S]*HTTP 503"));
  assert.equal(await page.locator("main button").count(), 0, "a read key is offered to re-drive");
  await screenshot(page, "dead-letters-read");
});

// signIn opens path in a new browser context and enters key at the prompt.
async function signIn(key, path) {
  const p = await newPage();
  await p.goto(fx.url + path);
  await p.locator("#key").waitFor({ state: "visible" });
  await p.fill("#key-input", key);
  await p.click("#key-form button");
  return p;
}

const writer = await signIn(fx.write_key, "/ui/instances/" + encodeURIComponent(fx.payable));
const forms = (p) => p.locator("#actions form.event").evaluateAll((fs) => fs.map((f) => f.dataset.event));

await step("a write key explains an event from its form, sees a refusal, sends it and sees the new state", async () => {
  const pay = writer.locator("#actions form[data-event='pay']");
  await pay.waitFor();
  assert.deepEqual(await forms(writer), ["pay", "cancel", "payment_overdue"]);
  assert.match(await pay.innerText(), /amount\s+number/);
  assert.equal(await pay.locator("#f-pay-amount").getAttribute("type"), "number");
  // Explain sends nothing: what would happen, each branch with its guard.
  await pay.locator("#f-pay-amount").fill(String(fx.amount));
  await pay.locator("#f-pay-method").fill("cash");
  await pay.locator("button:text-is('Explain')").click();
  await pay.locator(".explanation .refused").waitFor();
  assert.match(await pay.locator(".explanation").innerText(), /guard_rejected would be refused/);
  assert.equal(await pay.locator(".explanation tbody tr").count(), 2, "one row per branch");
  // Sent anyway: the refusal's detail, and nothing changed.
  await pay.locator("button:text-is('Send')").click();
  await pay.locator(".outcome .error").waitFor();
  assert.match(await pay.locator(".outcome .error").innerText(), /no guard holds.*guard_rejected/s);
  assert.equal(await writer.locator("#instance-state").innerText(), "awaiting_payment");
  await pay.locator("#f-pay-method").fill("card");
  await pay.locator("button:text-is('Explain')").click();
  await pay.locator(".explanation .accepted").waitFor();
  assert.equal(await pay.locator(".explanation .accepted [data-to]").innerText(), "paid");
  assert.equal(await writer.locator("#instance-state").innerText(), "awaiting_payment", "explain changed the instance");
  await screenshot(writer, "explain");
  await pay.locator("button:text-is('Send')").click();
  await writer.locator("#sent").waitFor();
  assert.equal(await writer.locator("#instance-state").innerText(), "paid");
  assert.match(await writer.locator("#sent").innerText(), /Sent pay: awaiting_payment → paid \(#1\)/);
  assert.match(await writer.locator("#history").innerText(), /pay\s+awaiting_payment → paid/);
  assert.deepEqual(await forms(writer), ["ship", "cancel"]);
  await screenshot(writer, "sent");
});

await step("script in a payload sent from a form stays text", async () => {
  const xss = `<img src=x onerror="window.__xss=1">`;
  const shown = JSON.stringify(xss); // payloads and contexts are shown as JSON
  const cancel = writer.locator("#actions form[data-event='cancel']");
  await cancel.locator("#f-cancel-reason").fill(xss);
  await cancel.locator("button:text-is('Explain')").click();
  await cancel.locator(".explanation details").evaluate((d) => (d.open = true));
  assert.ok((await cancel.locator(".explanation").innerText()).includes(shown), "the context after does not show the reason");
  await cancel.locator("button:text-is('Send')").click();
  await writer.locator("#sent").filter({ hasText: "Sent cancel" }).waitFor(); // the note of pay is there until the page is redrawn
  assert.equal(await writer.locator("#instance-state").innerText(), "refund_pending");
  await writer.locator("#history details").first().evaluate((d) => (d.open = true));
  assert.ok((await writer.locator("#history li").first().innerText()).includes(shown), "the payload is not shown as text");
  assert.equal(await writer.evaluate(() => window.__xss), undefined, "script from a payload ran");
  assert.equal(await writer.locator("main img, main script").count(), 0, "markup from a payload became elements");
  await screenshot(writer, "payload-escaped");
});

// The finance key's worklist: the approval waits in finance_review, which assigns it to the group
// finance (definitions/approval.yaml).
const finance = await signIn(fx.finance_key, "/ui/worklist");

await step("the worklist: what waits for the caller, with the events it may send, each linked", async () => {
  await finance.locator("#worklist table").waitFor();
  // The one due first, then the one without a due date.
  const rows = finance.locator("#worklist tbody tr");
  assert.deepEqual(await rows.locator("td:first-child").allInnerTexts(), [fx.assigned, fx.approval]);
  const assigned = await rows.nth(0).locator("td").allInnerTexts();
  assert.deepEqual(assigned.slice(0, 4), [fx.assigned, "approval v1", "manager_review", "finance-key"]);
  assert.match(assigned[4], /in (71|72)\.\d h|in 3\.0 days/);
  assert.doesNotMatch(assigned[4], /overdue/);
  const row = rows.nth(1);
  const cells = await row.locator("td").allInnerTexts();
  assert.deepEqual(cells.slice(0, 5), [fx.approval, "approval v1", "finance_review", "group:finance", "–"]);
  assert.match(cells[5], /approve/);
  assert.match(await finance.locator("header nav").innerText(), /Worklist/);
  await screenshot(finance, "worklist");
  await row.locator("a").click();
  await finance.waitForURL(new RegExp("/ui/instances/" + fx.approval + "$"));
  await finance.locator("#actions form").first().waitFor();
});

await step("a branch's allow: a write key outside its groups is not offered the event, one inside sends it", async () => {
  await writer.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.approval));
  await writer.locator("#actions form").first().waitFor();
  assert.equal(await writer.locator("#instance-state").innerText(), "finance_review");
  const offered = await forms(writer);
  assert.ok(!offered.includes("approve") && offered.includes("reject"), `the write key is offered ${offered}`);
  const why = await writer.locator("#withheld li[data-event='approve']").innerText();
  assert.match(why, /approve: not offered, only finance may take it/, "why approve is not offered");
  await finance.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.approval));
  const approve = finance.locator("#actions form[data-event='approve']");
  await approve.waitFor();
  await approve.locator("#f-approve-approver").fill("fiona");
  await approve.locator("button:text-is('Send')").click();
  await finance.locator("#sent").waitFor();
  assert.equal(await finance.locator("#instance-state").innerText(), "approved");
  assert.match(await finance.locator("#history").innerText(), /by finance-key/);
  assert.equal(await finance.locator("#actions").count(), 0, "a final instance is offered events");
  await screenshot(finance, "allowed");
});
await step("a write key sees no bulk, repair, suspend, terminate or re-drive", async () => {
  await writer.goto(fx.url + "/ui/definitions/loan");
  await writer.locator("#diagram svg").waitFor();
  assert.equal(await writer.locator(operating).count(), 0, "a write key is offered to operate on a definition");
  await writer.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.pause_loan));
  await writer.locator("#actions form[data-event='submit']").waitFor(); // it may send events
  assert.equal(await writer.locator(operating).count(), 0, "a write key is offered to operate on an instance");
  assert.equal(await writer.locator("main button:text-is('Suspend'), main button:text-is('Terminate'), main button:text-is('Repair')").count(), 0);
  await writer.goto(fx.url + "/ui/dead-letters");
  await writer.locator("#dead-letters table").waitFor();
  assert.equal(await writer.locator(operating).count(), 0, "a write key is offered to re-drive");
});
await writer.context().close();
await finance.context().close();

const admin = await signIn(fx.admin_key, "/ui/definitions/loan");

await step("an admin plans a bulk (the plan's table), then runs it and follows it to done", async () => {
  await admin.locator("#bulk-form").waitFor();
  await admin.selectOption("#bulk-state", "draft");
  await admin.fill("#bulk-ctx", JSON.stringify({ purpose: "bulk", "amount_requested[gte]": 1000 }));
  await admin.selectOption("#bulk-what", "event:submit");
  await admin.click("#bulk-plan-button");
  await admin.locator("#bulk-plan table, #bulk-plan .error").first().waitFor();
  assert.equal(await admin.locator("#bulk-plan .error").count(), 0, await admin.locator("#bulk-plan").innerText());
  assert.match(await admin.locator("#bulk-total").innerText(), /^3 running instances match/);
  const rows = admin.locator("#bulk-plan tbody tr");
  const got = [];
  for (let i = 0; i < (await rows.count()); i++) got.push(await rows.nth(i).locator("td").allInnerTexts());
  got.sort((a, b) => (a[1] < b[1] ? -1 : 1));
  assert.deepEqual(got, [["draft", "guard_rejected", "1", fx.bulk_loans[2]],
    ["draft", "kyc_check", "2", fx.bulk_loans[0] + ", " + fx.bulk_loans[1]]]);
  assert.deepEqual(await admin.locator("#bulk-plan tbody a").evaluateAll((as) => as.map((a) => a.getAttribute("href"))),
    [2, 0, 1].map((i) => "/ui/instances/" + fx.bulk_loans[i]), "the sample ids link to their instances");
  await screenshot(admin, "bulk-plan");
  // A changed form drops the plan: what runs is what was planned.
  await admin.selectOption("#bulk-what", "action:suspend");
  assert.equal(await admin.locator("#bulk-plan table, #bulk-run-button").count(), 0, "the plan stays when the form changes");
  await admin.selectOption("#bulk-what", "event:submit");
  await admin.click("#bulk-plan-button");
  await admin.locator("#bulk-run-button").filter({ hasText: "Run on 3 instances" }).waitFor();
  await admin.click("#bulk-run-button");
  await admin.locator("#bulk-status").filter({ hasText: /\bdone\b/ }).waitFor();
  assert.match(await admin.locator("#bulk-counts").innerText(), /^applied 2 · refused 1 · of 3$/);
  assert.equal(await admin.locator("#bulk-cancel").count(), 0, "Cancel is offered for a bulk that is done");
  assert.equal(await admin.locator("#bulk-run-button").isDisabled(), true, "a plan can be run twice");
  await screenshot(admin, "bulk-done");
  // Its instances: moved by the bulk, the refused one where it was.
  await admin.click(`#bulk-run a[href='/ui/instances/${fx.bulk_loans[0]}']`);
  await admin.locator("#diagram svg").waitFor();
  assert.equal(await admin.locator("#instance-state").innerText(), "kyc_check");
  assert.match(await admin.locator("#history li").first().innerText(), /bulk by admin-key/);
});

await step("an admin repairs an instance with a reason (script in it stays text); a refused repair shows why", async () => {
  const xss = `<img src=x onerror="window.__xss=1">`;
  await admin.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.repair_loan));
  const repair = admin.locator("#admin form#op-repair");
  await repair.waitFor();
  assert.equal(await admin.locator("#instance-state").innerText(), "draft");
  await admin.selectOption("#op-repair-state", "credit_check");
  await admin.fill("#op-repair-context", JSON.stringify({ amount_requested: "lots" }));
  await admin.fill("#op-repair-reason", xss);
  await repair.locator("button:text-is('Repair')").click();
  await repair.locator(".outcome .error").waitFor();
  assert.match(await repair.locator(".outcome .error").innerText(), /invalid_context/);
  assert.equal(await admin.locator("#instance-state").innerText(), "draft");
  await admin.fill("#op-repair-context", JSON.stringify({ hold_reason: "fixed by hand" }));
  await repair.locator("button:text-is('Repair')").click();
  await admin.locator("#sent").filter({ hasText: "Repaired" }).waitFor();
  assert.equal(await admin.locator("#instance-state").innerText(), "credit_check");
  assert.match(await admin.locator("#sent").innerText(), /Repaired: draft → credit_check \(#1\)/);
  const row = admin.locator("#history ol.timeline > li").first();
  assert.match(await row.innerText(), /repair by admin-key/);
  assert.match(await row.innerText(), /repair\s+draft → credit_check/);
  await row.locator("details").evaluate((d) => (d.open = true));
  const shown = await row.innerText();
  assert.ok(shown.includes(JSON.stringify(xss)), "the reason is not shown as text:\n" + shown);
  assert.ok(shown.includes("fixed by hand"), "the context after misses the repair's field");
  assert.equal(await admin.evaluate(() => window.__xss), undefined, "script from a reason ran");
  assert.equal(await admin.locator("main img, main script").count(), 0, "markup from a reason became elements");
  await screenshot(admin, "repaired");
});

await step("an admin suspends then resumes an instance", async () => {
  await admin.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.pause_loan));
  await admin.locator("#op-suspend").waitFor();
  assert.equal(await admin.locator("#instance-suspended").count(), 0);
  await admin.fill("#op-pause-reason", "waiting for the bureau");
  await admin.locator("#op-suspend button:text-is('Suspend')").click();
  await admin.locator("#op-resume").waitFor();
  assert.equal(await admin.locator("#instance-suspended").innerText(), "suspended");
  assert.match(await admin.locator("#sent").innerText(), /Suspended: waiting for the bureau/);
  assert.match(await admin.locator("#history ol.timeline > li").first().innerText(), /admin by admin-key[\s\S]*suspend\s+draft → draft/);
  await screenshot(admin, "suspended");
  await admin.locator("#op-resume button:text-is('Resume')").click();
  await admin.locator("#op-suspend").waitFor();
  assert.equal(await admin.locator("#instance-suspended").count(), 0);
  assert.match(await admin.locator("#history ol.timeline > li").first().innerText(), /resume\s+draft → draft/);
});

await step("an admin terminates an instance, confirmed in the page", async () => {
  await admin.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.end_loan));
  await admin.locator("#op-terminate").waitFor();
  await admin.fill("#op-terminate-reason", "a duplicate application");
  await admin.locator("#op-terminate button:text-is('Terminate')").click();
  await admin.locator("#op-terminate-confirm").click();
  await admin.locator("#instance-terminated").waitFor();
  assert.equal(await admin.locator("#instance-state").innerText(), "draft");
  assert.equal(await admin.locator("#admin, #actions").count(), 0, "a terminated instance is offered to act");
});

await step("an admin re-drives a dead letter", async () => {
  await admin.goto(fx.url + "/ui/dead-letters");
  const button = admin.locator(`#dead-letters button.redrive[data-id='${fx.dead_letter}']`);
  await button.waitFor();
  await screenshot(admin, "dead-letters-admin");
  await button.click();
  await admin.locator("#dead-letters .redrive .badge").filter({ hasText: "re-driven" }).waitFor();
  await admin.reload();
  await admin.locator("#dead-letters").waitFor();
  assert.match(await admin.locator("#dead-letters").innerText(), /No dead letters/);
});
await admin.context().close();

await step("the instances a migration stranded, and one of them", async () => {
  await page.goto(fx.url + "/ui/definitions/claim");
  await page.locator("#migrations table").first().waitFor();
  const migrations = await text("#migrations");
  assert.match(migrations, /done/);
  assert.match(migrations, /state_unmapped/);
  assert.match(await text("main"), /not migrated/);
  await screenshot(page, "stranded");
  await page.click(`#migrations a:text-is('${fx.stranded}')`);
  await page.waitForURL(new RegExp("/ui/instances/" + fx.stranded + "$"));
  await page.locator("#diagram svg").waitFor();
  assert.equal(await text("#instance-state"), "on_hold");
  assert.match(await text("main"), /claim v1/);
});

await step("a trip's children: counts, counts by state, links; its diagram marks the state that starts them", async () => {
  await page.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.trip));
  await page.locator("#diagram svg").waitFor();
  await page.locator("#children").waitFor();
  assert.equal(await text("#instance-state"), "booking");
  assert.equal(await page.locator("#parent").count(), 0, "a trip created through the API shows a parent");
  assert.doesNotMatch(await text("main"), /^null$/m, "a part left out shows as null");
  const group = page.locator("#children li.group[data-group='legs']");
  assert.equal(await page.locator("#children li.group").count(), 1, "one group");
  // Its counts, each next to its name.
  assert.match(await group.locator("dl.facts").innerText(), /total\s+2\s+running\s+2\s+final\s+0/);
  // By state: both legs requested, and no other state.
  const rows = await group.locator("table tbody tr").allInnerTexts();
  assert.deepEqual(rows.map((r) => r.trim().split(/\s+/)), [["requested", "2"]]);
  assert.equal(await group.locator("p.note").count(), 0, "a note on counts of a group read whole");
  // The children, in index order, each a link to its page and in its state.
  const kids = group.locator("ul.children > li");
  assert.equal(await kids.count(), 2);
  for (let i = 0; i < 2; i++) {
    const a = kids.nth(i).locator("a");
    assert.equal(await a.innerText(), fx.trip_legs[i]);
    assert.equal(await a.getAttribute("href"), "/ui/instances/" + encodeURIComponent(fx.trip_legs[i]));
    assert.equal(await kids.nth(i).locator(".badge").innerText(), "requested");
    assert.match(await kids.nth(i).innerText(), new RegExp("#" + i + "$"));
  }
  assert.equal(await group.locator("button.more").isHidden(), true, "more offered for 2 children");
  // The diagram: the state that starts the legs is marked, and says what it starts.
  const booking = page.locator("#diagram g.node[data-state='booking']");
  assert.match(await booking.getAttribute("class"), /\bchildren\b/);
  assert.match(await booking.getAttribute("class"), /\bcurrent\b/);
  assert.match(await booking.evaluate((g) => g.textContent), /starts legs \(booking\)/);
  assert.equal(await page.locator("#diagram g.node.children").count(), 1, "only booking starts children");
  assert.match(await text(".legend"), /starts children/);
  await screenshot(page, "children");
});

await step("a child links back to its parent", async () => {
  await page.click(`#children a[href="/ui/instances/${encodeURIComponent(fx.trip_legs[1])}"]`);
  await page.waitForURL(new RegExp("/ui/instances/" + fx.trip_legs[1].replaceAll(".", "\\.") + "$"));
  await page.locator("#diagram svg").waitFor();
  assert.equal(await text("#instance-id"), fx.trip_legs[1]);
  assert.equal(await text("#instance-state"), "requested");
  assert.equal(await text("#parent"), `child 1 of group legs of ${fx.trip}`);
  assert.match(await text("main"), /"kind": "hotel"/); // the second leg's context
  assert.equal(await page.locator("#children").count(), 0, "a booking shows children");
  await screenshot(page, "child");
  await page.click("#parent a");
  await page.waitForURL(new RegExp("/ui/instances/" + fx.trip + "$"));
  await page.locator("#children li.group").waitFor();
  assert.equal(await text("#instance-id"), fx.trip);
});

await step("a group with more children than a list shows at first: more, and the list of all", async () => {
  await page.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.many_trip));
  const group = page.locator("#children li.group[data-group='legs']");
  await group.waitFor();
  assert.match(await group.locator("dl.facts").innerText(), new RegExp(`total\\s+${fx.many_legs}\\s+running\\s+${fx.many_legs}\\s+final\\s+0`));
  assert.deepEqual((await group.locator("table tbody tr").allInnerTexts()).map((r) => r.trim().split(/\s+/)), [["requested", String(fx.many_legs)]]);
  const kids = group.locator("ul.children > li");
  assert.equal(await kids.count(), 100);
  await group.locator("button.more").click();
  assert.equal(await kids.count(), fx.many_legs);
  assert.equal(await group.locator("button.more").isHidden(), true);
  const ids = await kids.locator("a").allInnerTexts();
  assert.equal(new Set(ids).size, fx.many_legs, "a child listed twice");
  await page.click("#children a:text-is('All its children, as a list →')");
  await page.waitForURL(/\/ui\/instances\?parent=trip-many$/);
  await page.locator("main table").waitFor();
  assert.match(await text("main h1"), /Children of trip-many/);
  assert.equal(await page.locator("main table tbody tr").count(), 50);
  assert.match(await text("main"), /Next page/);
});

await step("a trip that has left the state that started its children still shows them", async () => {
  await page.goto(fx.url + "/ui/instances/" + encodeURIComponent(fx.done_trip));
  const group = page.locator("#children li.group[data-group='legs']");
  await group.waitFor();
  assert.equal(await text("#instance-state"), "cancelled");
  assert.match(await text("#children"), /Started by a state it has left/);
  assert.match(await group.locator("dl.facts").innerText(), /total\s+2\s+running\s+0\s+final\s+2/);
  assert.deepEqual((await group.locator("table tbody tr").allInnerTexts()).map((r) => r.trim().split(/\s+/)),
    [["cancelled", "1"], ["failed", "1"]]);
  assert.deepEqual(await group.locator("ul.children > li .badge").allInnerTexts(), ["failed", "cancelled"]);
  await screenshot(page, "children-ended");
});

await step("a wrong key is refused, and the console asks again", async () => {
  const other = await newPage();
  await other.goto(fx.url + "/ui/");
  await other.fill("#key-input", "fsmd_" + "x".repeat(43));
  await other.click("#key-form button");
  await other.locator("#key-why").filter({ hasText: "refused" }).waitFor();
  assert.equal(await other.evaluate(() => sessionStorage.getItem("fsmd.key")), null, "the refused key was kept");
  assert.doesNotMatch(await other.locator("#keystate").innerText(), /key set/);
  await screenshot(other, "wrong-key");
  await other.context().close();
});

await step("a server without keys asks for none", async () => {
  const other = await newPage();
  await other.goto(fx.open_url + "/ui/");
  await other.locator("main table").waitFor();
  assert.match(await other.locator("main").innerText(), /order/);
  assert.equal(await other.locator("#key").isHidden(), true, "a key was asked for");
  // Its caller is the anonymous user with every right: it is offered the events.
  await other.goto(fx.open_url + "/ui/instances/" + encodeURIComponent(fx.pending));
  await other.locator("#actions form[data-event='pay']").waitFor();
  assert.match(await other.locator("#actions").innerText(), /the anonymous user \(admin\)/);
  await other.context().close();
});

await browser.close();
if (problems.length) {
  console.error("\n" + problems.join("\n"));
  process.exit(1);
}
