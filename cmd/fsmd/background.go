package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/service"
)

// background runs serve's workers (reloads, the metrics refresh, the timer scheduler, the message
// dispatcher, the outbox dispatcher, the watcher) until stop, which cancels their context and waits
// for them: they end before the service and the database they use close.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newBackground(ctx context.Context) *background {
	b := &background{}
	b.ctx, b.cancel = context.WithCancel(ctx)
	return b
}

// run runs f in the background until stop; f must return once its context ends.
func (b *background) run(f func(ctx context.Context)) { b.wg.Go(func() { f(b.ctx) }) }

func (b *background) stop() {
	b.cancel()
	b.wg.Wait()
}

// notifyHUP catches SIGHUP, which would otherwise end the process; Stop the channel when done.
func notifyHUP() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloader returns the reload of the definitions folder dir, logged under what triggered it. A
// reload in progress when ctx ends is cancelled: what it registered stays, the next start registers
// the rest.
func reloader(ctx context.Context, svc *service.Service, dir string, log *slog.Logger) func(trigger string) {
	return func(trigger string) {
		res, err := svc.Reload(ctx, dir)
		logReload(ctx, log, trigger, dir, res, err)
	}
}

// reloadOnHUP reloads on every SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, reload func(trigger string)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload("SIGHUP")
		}
	}
}

// logReload logs what a reload of the definitions folder did: its new versions and warnings, or why
// it failed (the registered versions go on serving).
func logReload(ctx context.Context, log *slog.Logger, trigger, dir string, res service.ReloadResult, err error) {
	if err != nil {
		if ctx.Err() != nil {
			log.Info("reloading the definitions: interrupted by the shutdown", "trigger", trigger)
			return
		}
		log.Error("reloading the definitions failed: the registered versions go on serving", "trigger", trigger,
			"definitions", dir, "error", err.Error())
		return
	}
	created := []string{}
	for _, d := range res.Definitions {
		if d.Created {
			created = append(created, fmt.Sprintf("%s@%d", d.Name, d.Version))
		}
	}
	log.Info("definitions reloaded", "trigger", trigger, "definitions", len(res.Definitions), "new_versions", created)
	for _, w := range res.Warnings {
		log.Warn("definition warning", "warning", w.String())
	}
}

// newDispatcher is this process's outbox dispatcher (every process runs one; they share the
// deliveries), woken by the service after each commit that wrote outbox rows. Without the webhook
// secret there is none (nil): the deliveries wait for a process that has it.
func newDispatcher(a *app, c serveConfig, log *slog.Logger, metrics prometheus.Registerer) (*outbox.Dispatcher, error) {
	if c.WebhookSecret == "" {
		if notifies(a.set) {
			log.Warn("FSMD_WEBHOOK_SECRET is not set: webhook deliveries wait in the outbox until a process with the secret delivers them")
		}
		return nil, nil
	}
	d, err := outbox.New(a.db, outbox.Config{Secret: []byte(c.WebhookSecret), Logger: log, Metrics: metrics,
		Allow: c.WebhookAllow, Deny: c.WebhookDeny, Definition: a.svc.Definition, OnDeadSent: a.svc.WakeMessages})
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	a.svc.SetOutboxWake(d.Wake)
	return d, nil
}

// notifies reports whether a definition of set has webhooks.
func notifies(set *machine.Set) bool {
	for _, def := range set.ByName {
		if len(def.Notify) > 0 {
			return true
		}
	}
	return false
}
