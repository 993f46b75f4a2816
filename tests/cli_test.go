package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/table"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var (
	fsmdBin  string // the binary TestMain builds
	repoRoot string // where the binary runs, so its output names paths as users see them
)

// TestMain builds the fsmd binary once for the end-to-end tests.
func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fsmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if repoRoot, err = filepath.Abs(".."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fsmdBin = filepath.Join(dir, "fsmd")
	if runtime.GOOS == "windows" {
		fsmdBin += ".exe"
	}
	build := exec.Command("go", "build", "-o", fsmdBin, "../cmd/fsmd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building fsmd: %v\n%s", err, out)
		return 1
	}
	return apiConformMain(m) // m.Run, every API exchange checked against the document
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// lastLine is the last line of stdout.
func (r result) lastLine() string {
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	return lines[len(lines)-1]
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// fsmd runs the binary in the repository's root with args.
func fsmd(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, fsmdBin, args...)
	cmd.Dir = repoRoot
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: slashes(stdout.String()), stderr: slashes(stderr.String())}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		res.code = exit.ExitCode()
	default:
		t.Fatalf("fsmd %s: %v\n%s", strings.Join(args, " "), err, res)
	}
	return res
}

// slashes writes the paths in output with forward slashes, as the golden files and expectations do.
func slashes(s string) string {
	if runtime.GOOS == "windows" {
		return strings.ReplaceAll(s, `\`, "/")
	}
	return s
}

// cliCase is one run of the binary and what it must print.
type cliCase struct {
	name     string
	args     []string
	code     int
	stdout   []string // substrings of stdout
	stderr   []string // substrings of stderr
	noStdout []string // not in stdout
	last     string   // the exact last line of stdout, when not ""
	quiet    bool     // stdout must be empty (usage errors report on stderr only)
}

func (c cliCase) check(t *testing.T, res result) {
	t.Helper()
	if res.code != c.code {
		t.Errorf("exit code %d, want %d", res.code, c.code)
	}
	for _, s := range c.stdout {
		if !strings.Contains(res.stdout, s) {
			t.Errorf("stdout lacks %q", s)
		}
	}
	for _, s := range c.stderr {
		if !strings.Contains(res.stderr, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	for _, s := range c.noStdout {
		if strings.Contains(res.stdout, s) {
			t.Errorf("stdout has %q", s)
		}
	}
	if c.last != "" && res.lastLine() != c.last {
		t.Errorf("last line of stdout is %q, want %q", res.lastLine(), c.last)
	}
	if c.quiet && res.stdout != "" {
		t.Errorf("stdout is not empty")
	}
	if t.Failed() {
		t.Logf("fsmd %s\n%s", strings.Join(c.args, " "), res)
	}
}

func runCLICases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.check(t, fsmd(t, c.args...))
		})
	}
}

const (
	failingTable = "tests/testdata/failing/door.test.yaml"
	failingCase  = "a door opened and closed again is expected open, which is wrong"
	passingCase  = "opening a closed door opens it"
)

func TestCLITest(t *testing.T) {
	t.Parallel()
	runCLICases(t, []cliCase{
		{
			name: "a failing case is reported with its file, case, step, expected and got",
			args: []string{"test", "tests/testdata/failing"},
			code: 1,
			stdout: []string{
				"FAIL " + failingTable + ":6: " + failingCase + "\n",
				"after step 2 (event close, line 9)",
				"state: expected opened, got closed",
			},
			noStdout: []string{passingCase},
			last:     "1 passed, 1 failed",
		},
		{
			name:   "-v prints the passing cases and what each step did",
			args:   []string{"test", "-v", "tests/testdata/failing"},
			code:   1,
			stdout: []string{"ok   " + failingTable + ":2: " + passingCase + "\n", "open: closed -> opened", "FAIL " + failingTable},
			last:   "1 passed, 1 failed",
		},
		{
			name:     "-run keeps the matching cases",
			args:     []string{"test", "-run", "opens it$", "tests/testdata/failing"},
			code:     0,
			noStdout: []string{"FAIL"},
			last:     "1 passed, 0 failed",
		},
		{
			name:   "-run after the path",
			args:   []string{"test", "tests/testdata/failing", "-run", "expected open"},
			code:   1,
			stdout: []string{"FAIL " + failingTable},
			last:   "0 passed, 1 failed",
		},
		{
			name: "-run=REGEX and --run",
			args: []string{"test", "--run=opens", "tests/testdata/failing", "-v"},
			code: 0,
			stdout: []string{
				"ok   " + failingTable + ":2: " + passingCase,
			},
			last: "1 passed, 0 failed",
		},
		{
			name: "-run matching no case",
			args: []string{"test", "tests/testdata/failing", "-run", "no such case"},
			code: 0,
			last: "0 passed, 0 failed",
		},
		{
			name: "a definition file runs the table next to it",
			args: []string{"test", "tests/testdata/failing/door.yaml"},
			code: 1,
			last: "1 passed, 1 failed",
		},
		{
			name: "several paths",
			args: []string{"test", "tests/testdata/partial", failingTable},
			code: 1,
			last: "3 passed, 1 failed",
		},
		{
			name: "--coverage lists the transitions no case took",
			args: []string{"test", "--coverage", "tests/testdata/partial"},
			code: 0,
			stdout: []string{
				"coverage: lamp: 2 of 3 transitions taken",
				"lamp: not taken: dark --switch_on[1]--> broken (tests/testdata/partial/lamp.yaml:12:15)",
				"lamp: never true: guard of dark --switch_on[1]--> broken: ctx.watts > 100 (tests/testdata/partial/lamp.yaml:13:18)",
			},
			last: "2 passed, 0 failed",
		},
		{
			name:     "no coverage without --coverage",
			args:     []string{"test", "tests/testdata/partial"},
			code:     0,
			noStdout: []string{"coverage:", "not taken"},
			last:     "2 passed, 0 failed",
		},
		{
			name: "a table whose definition is missing",
			args: []string{"test", "tests/testdata/nodef"},
			code: 1,
			stdout: []string{
				"tests/testdata/nodef/ghost.test.yaml: error: ", `"ghost"`,
				"tests/testdata/nodef/orphan.test.yaml: error: ", "tests/testdata/nodef/orphan.yaml",
			},
			last: "0 passed, 2 failed",
		},
		{
			name:   "a folder without tables",
			args:   []string{"test", "tests/testdata/invalid"},
			code:   1,
			stdout: []string{"tests/testdata/invalid: error: no transition tables"},
			last:   "0 passed, 1 failed",
		},
		{
			name:   "a definition file without a table is a usage error naming it",
			args:   []string{"test", "tests/testdata/partial/lamp.yaml", "tests/testdata/invalid/broken.yaml"},
			code:   2,
			stderr: []string{"tests/testdata/invalid/broken.yaml is not a transition table"},
			quiet:  true,
		},
		{
			name:   "a missing path",
			args:   []string{"test", "tests/testdata/no_such_folder"},
			code:   2,
			stderr: []string{"tests/testdata/no_such_folder"},
			quiet:  true,
		},
		{
			name:   "a bad -run regex",
			args:   []string{"test", "-run", "(", "tests/testdata/failing"},
			code:   2,
			stderr: []string{"-run", "missing closing )"},
			quiet:  true,
		},
		{
			name:   "-run without its value",
			args:   []string{"test", "tests/testdata/failing", "-run"},
			code:   2,
			stderr: []string{"flag needs an argument: -run"},
			quiet:  true,
		},
		{
			name:   "an unknown flag",
			args:   []string{"test", "--bogus", "tests/testdata/failing"},
			code:   2,
			stderr: []string{"flag provided but not defined: -bogus", "Usage: fsmd test"},
			quiet:  true,
		},
	})
}

func TestCLIValidate(t *testing.T) {
	t.Parallel()
	runCLICases(t, []cliCase{
		{
			name:   "a broken definition",
			args:   []string{"validate", "tests/testdata/invalid/broken.yaml"},
			code:   1,
			stdout: []string{"tests/testdata/invalid/broken.yaml:20:13: error: on.lock in state \"closed\" goes to \"locked\", which is not a declared state\n"},
			last:   "0 definitions, 6 errors, 0 warnings",
		},
		{
			name: "warnings alone pass",
			args: []string{"validate", "tests/testdata/invalid/warned.yaml"},
			code: 0,
			last: "1 definition, 0 errors, 3 warnings",
		},
		{
			name:   "--format after the path",
			args:   []string{"validate", "tests/testdata/invalid/warned.yaml", "--format", "json"},
			code:   0,
			stdout: []string{`"severity": "warning"`},
		},
		{
			name:   "an unknown format",
			args:   []string{"validate", "--format", "xml", "definitions"},
			code:   2,
			stderr: []string{"--format must be text or json"},
			quiet:  true,
		},
		{
			name:   "an unknown flag",
			args:   []string{"validate", "-x"},
			code:   2,
			stderr: []string{"flag provided but not defined: -x", "Usage: fsmd validate"},
			quiet:  true,
		},
		{
			name:   "a missing path",
			args:   []string{"validate", "tests/testdata/no_such_folder"},
			code:   2,
			stderr: []string{"tests/testdata/no_such_folder"},
			quiet:  true,
		},
	})
}

func TestCLICommands(t *testing.T) {
	t.Parallel()
	runCLICases(t, []cliCase{
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"Usage:\n  fsmd COMMAND", "validate", "test", "version"}},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: []string{"Usage:\n  fsmd COMMAND"}},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"Usage:\n  fsmd COMMAND"}},
		{name: "help test", args: []string{"help", "test"}, code: 0, stdout: []string{"Usage: fsmd test", "-run", "-coverage"}},
		{name: "help validate", args: []string{"help", "validate"}, code: 0, stdout: []string{"Usage: fsmd validate", "-format"}},
		{name: "test -h", args: []string{"test", "-h"}, code: 0, stdout: []string{"Usage: fsmd test"}},
		{name: "help of an unknown command", args: []string{"help", "frob"}, code: 2, stderr: []string{`unknown command "frob"`}, quiet: true},
		{name: "an unknown command", args: []string{"frob"}, code: 2, stderr: []string{`unknown command "frob"`, "fsmd help"}, quiet: true},
		{name: "no command", args: nil, code: 2, stderr: []string{"Usage:\n  fsmd COMMAND"}, quiet: true},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"fsmd "}},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: []string{"fsmd "}},
		{name: "version with an argument flag", args: []string{"version", "-x"}, code: 2, quiet: true},
	})
}

func TestCLIVersion(t *testing.T) {
	t.Parallel()
	res := fsmd(t, "version")
	if res.code != 0 || !regexp.MustCompile(`^fsmd \S+ \(go\S+ \S+/\S+\)\n$`).MatchString(res.stdout) {
		t.Errorf("want one line like \"fsmd dev (go1.26 linux/amd64)\"\n%s", res)
	}
}

// TestCLIExamples runs fsmd on the example definitions: they are valid, and all their cases pass.
func TestCLIExamples(t *testing.T) {
	t.Parallel()
	set, _, err := machine.Load(definitionsDir)
	if err != nil {
		t.Fatal(err)
	}
	suite := loadTables(t)
	all := 0
	for _, tb := range suite.Tables {
		all += len(tb.Cases)
	}
	// -run: the first case alone, by its whole name.
	var only *regexp.Regexp
	matching := 0
	if len(suite.Tables) > 0 && len(suite.Tables[0].Cases) > 0 {
		only = regexp.MustCompile("^" + regexp.QuoteMeta(suite.Tables[0].Cases[0].Name) + "$")
		for _, tb := range suite.Tables {
			for _, c := range tb.Cases {
				if only.MatchString(c.Name) {
					matching++
				}
			}
		}
	}
	// Not even a warning: the handlers of the examples that can refuse an event say why in every
	// branch's guard_message (refusing on purpose), and no guard is shadowed or unsatisfiable.
	summary := fmt.Sprintf("%d definitions, 0 errors, 0 warnings", len(set.Files))
	cases := []cliCase{
		{name: "validate", args: []string{"validate", "definitions/"}, code: 0, last: summary},
		{name: "validate, the default path", args: []string{"validate"}, code: 0, last: summary},
		{name: "test", args: []string{"test", "definitions/"}, code: 0, noStdout: []string{"FAIL", "error:"},
			last: fmt.Sprintf("%d passed, 0 failed", all)},
		{name: "test, the default path", args: []string{"test"}, code: 0, last: fmt.Sprintf("%d passed, 0 failed", all)},
		{name: "test --coverage: every transition taken", args: []string{"test", "--coverage", "definitions/"}, code: 0,
			stdout: []string{"coverage: "}, noStdout: []string{"not taken"}, last: fmt.Sprintf("%d passed, 0 failed", all)},
	}
	if only != nil {
		cases = append(cases,
			cliCase{name: "test -run before the path", args: []string{"test", "-run", only.String(), "definitions/"}, code: 0,
				last: fmt.Sprintf("%d passed, 0 failed", matching)},
			cliCase{name: "test -run after the path", args: []string{"test", "definitions/", "-run", only.String()}, code: 0,
				last: fmt.Sprintf("%d passed, 0 failed", matching)},
		)
	}
	runCLICases(t, cases)
}

// TestCLIEmptyFolder: a folder without definitions is a problem with the input, not with the command.
func TestCLIEmptyFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("No definitions here.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLICases(t, []cliCase{
		{name: "validate", args: []string{"validate", dir}, code: 1, stdout: []string{slashes(dir) + ": error: no definition files"},
			last: "0 definitions, 1 error, 0 warnings"},
		{name: "validate --format json", args: []string{"validate", "--format", "json", dir}, code: 1, stdout: []string{"no definition files"}},
		{name: "test", args: []string{"test", dir}, code: 1, stdout: []string{"no transition tables"}, last: "0 passed, 1 failed"},
	})
}

// diagLine is the form of one diagnostic in text: path:line:col: severity: message.
var diagLine = regexp.MustCompile(`^(\S[^:]*):(\d+)(?::(\d+))?: (error|warning): (.+)$`)

// TestValidateGolden compares `fsmd validate` on a folder of broken definitions with
// testdata/golden/validate_invalid.txt (rewrite it with -update).
func TestValidateGolden(t *testing.T) {
	t.Parallel()
	res := fsmd(t, "validate", "tests/testdata/invalid")
	if res.code != 1 {
		t.Errorf("exit code %d, want 1\n%s", res.code, res)
	}
	if res.stderr != "" {
		t.Errorf("stderr is not empty:\n%s", res.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	for _, line := range lines[:len(lines)-1] {
		if !diagLine.MatchString(line) {
			t.Errorf("not a path:line:col: severity: message line: %q", line)
		}
	}
	golden(t, "validate_invalid.txt", res.stdout)
}

// TestValidateJSON checks that --format json gives the same diagnostics as the text form.
func TestValidateJSON(t *testing.T) {
	t.Parallel()
	text := fsmd(t, "validate", "tests/testdata/invalid")
	res := fsmd(t, "validate", "--format", "json", "tests/testdata/invalid")
	if res.code != 1 {
		t.Errorf("exit code %d, want 1\n%s", res.code, res)
	}
	var report struct {
		Definitions []string `json:"definitions"`
		Errors      int      `json:"errors"`
		Warnings    int      `json:"warnings"`
		Diagnostics []struct {
			File     string `json:"file"`
			Line     int    `json:"line"`
			Column   int    `json:"column"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
		} `json:"diagnostics"`
	}
	dec := json.NewDecoder(strings.NewReader(res.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&report); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, res)
	}
	if report.Errors != 6 || report.Warnings != 3 || len(report.Diagnostics) != 9 {
		t.Errorf("%d errors, %d warnings, %d diagnostics; want 6, 3, 9", report.Errors, report.Warnings, len(report.Diagnostics))
	}
	if strings.Join(report.Definitions, ",") != "warnings_only" {
		t.Errorf("definitions %q, want [warnings_only]", report.Definitions)
	}
	var lines []string
	for _, d := range report.Diagnostics {
		if d.File == "" || d.Line < 1 || d.Column < 1 || d.Message == "" || (d.Severity != "error" && d.Severity != "warning") {
			t.Errorf("incomplete diagnostic %+v", d)
		}
		lines = append(lines, fmt.Sprintf("%s:%d:%d: %s: %s", slashes(d.File), d.Line, d.Column, d.Severity, d.Message))
	}
	want := strings.Split(strings.TrimSuffix(text.stdout, "\n"), "\n")
	want = want[:len(want)-1] // the summary
	if got := strings.Join(lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("the JSON diagnostics differ from the text ones:\n--- json:\n%s\n--- text:\n%s", got, strings.Join(want, "\n"))
	}

	// Valid definitions: an empty list, never null.
	res = fsmd(t, "validate", "--format=json", "tests/testdata/partial")
	if res.code != 0 || !strings.Contains(res.stdout, `"diagnostics": []`) {
		t.Errorf("want exit 0 and \"diagnostics\": []\n%s", res)
	}
}

// TestValidateYAMLSyntaxErrorLine: a YAML syntax error is reported on the line of the problem.
func TestValidateYAMLSyntaxErrorLine(t *testing.T) {
	t.Parallel()
	res := fsmd(t, "validate", "tests/testdata/syntax")
	m := diagLine.FindStringSubmatch(strings.Split(res.stdout, "\n")[0])
	if res.code != 1 || m == nil {
		t.Fatalf("want exit 1 and a diagnostic\n%s", res)
	}
	if m[2] != "6" && m[2] != "7" { // the [ is on line 6, found unclosed on line 7
		t.Errorf("reported on line %s, want 6 or 7: %s", m[2], m[0])
	}
}

// TestCLIMisnamedDefinition: a table without `definition:` next to a definition file whose name
// differs from the file's (bulb.yaml defining lamp) tests that file, or at least says why not.
func TestCLIMisnamedDefinition(t *testing.T) {
	t.Parallel()
	res := fsmd(t, "test", "tests/testdata/misnamed")
	if strings.Contains(res.stdout, "does not exist") {
		t.Errorf("says an existing file does not exist\n%s", res)
	}
	if res.code != 0 || res.lastLine() != "1 passed, 0 failed" {
		t.Errorf("want the case run against bulb.yaml: exit 0, 1 passed, 0 failed\n%s", res)
	}
}

// golden compares got with testdata/golden/name, or writes it there with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rewrite it with -update if the change is right)\n--- got:\n%s--- want:\n%s", path, got, want)
	}
}

// TestFixtures checks the fixtures the CLI tests rely on with the runner itself: door.test.yaml has
// one passing and one failing case, lamp.test.yaml passes but leaves one transition untaken.
func TestFixtures(t *testing.T) {
	t.Parallel()
	suite, err := table.Load("testdata/failing", "testdata/partial")
	if err != nil {
		t.Fatal(err)
	}
	cov := table.NewCoverage()
	passed, failed := 0, len(suite.Problems)
	for _, tb := range suite.Tables {
		for _, c := range tb.Cases {
			if table.Run(tb.Def, c, cov).Passed() {
				passed++
			} else {
				failed++
			}
		}
	}
	if passed != 3 || failed != 1 {
		t.Errorf("%d passed, %d failed; want 3 and 1 (problems: %v)", passed, failed, suite.Problems)
	}
	untaken := map[string]int{}
	for _, g := range cov.Gaps() {
		untaken[g.Definition.Name] = len(g.Untaken)
	}
	if untaken["lamp"] != 1 {
		t.Errorf("untaken transitions %v, want lamp 1", untaken)
	}
}
