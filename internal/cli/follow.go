package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/engine"
)

// followRelease prints a release's events as they happen until it ends:
// the server's event stream of the release (runway events --release), with
// what it waits for as that changes ("analysis waits for traffic: 12/100
// requests") and, below, where instances and traffic stand.
func followRelease(ctx context.Context, g *Globals, c *client.Client, id string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	rel, err := c.Release(ctx, id)
	if err != nil {
		return err
	}
	fctx, ended := context.WithCancel(ctx)
	defer ended()
	lastProgress := ""
	err = c.Events(fctx, apiwire.EventFilter{Project: rel.Project, Environment: rel.Environment, Release: id, Limit: 1000, Follow: true},
		func(e apiwire.ServiceEvent) error {
			final := e.Kind == "release" && e.Step < 0 && engine.State(e.State).Final()
			if final {
				defer ended()
			}
			if !g.JSON() {
				switch e.Kind {
				case "wait":
					progressRow(g.Stdout, e.State, "waiting: "+e.Message)
				case "release":
					eventLine(g.Stdout, apiwire.Event{At: e.At, State: e.State, Message: e.Message})
				default:
					eventLine(g.Stdout, apiwire.Event{At: e.At, State: "", Message: e.Message})
				}
				// Live progress: what runs and where traffic goes, printed
				// when it changes, after a state change or a wait (the
				// steps of a state come in a burst; status is read now).
				// Status is best effort: a failure to read it must not end
				// the follow.
				if e.Kind != "wait" && (e.Kind != "release" || e.Step >= 0) {
					return nil
				}
				if st, err := c.Status(fctx, rel.Project, rel.Environment, rel.Service); err == nil {
					if p := progressLine(st); p != lastProgress {
						progressRow(g.Stdout, e.State, p)
						lastProgress = p
					}
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	last, err := c.Release(ctx, id)
	if err != nil || !last.Done {
		if ctx.Err() != nil || err == nil {
			stoppedFollowing(g, id, rel)
			return silentError{ExitFailure}
		}
		return err
	}
	if err := render(g, last, followedTable); err != nil {
		return err
	}
	if last.State != string(engine.StateSuccess) {
		msg := fmt.Sprintf("release %s ended in %s", last.ID, last.State)
		if last.Error != "" {
			msg += ": " + last.Error
		}
		return errors.New(msg)
	}
	return nil
}

// stoppedFollowing tells what goes on after Ctrl-C ends a follow: the
// release does, and how to halt or follow it again.
func stoppedFollowing(g *Globals, id string, last *apiwire.ReleaseDetail) {
	// (last is the release as the follow started)
	halt := "runway halt SERVICE --env ENV"
	if last != nil {
		halt = fmt.Sprintf("runway halt %s --env %s", last.Service, last.Environment)
	}
	fmt.Fprintf(g.Stderr, "stopped following; release %s goes on. Follow it again with: runway release show %s --wait; halt it with: %s\n", id, id, halt)
}

// followSwitchBack reports an instant rollback: release rel was halted inside
// its scale_down_delay, which switches the traffic back to the release that
// served before it (rel.RollbackOf).
func followSwitchBack(ctx context.Context, g *Globals, c *client.Client, rel *apiwire.Release, wait bool) error {
	if !wait {
		if g.JSON() {
			return writeJSON(g, rel)
		}
		fmt.Fprintf(g.Stdout, "release %s is inside its scale_down_delay: switching back to release %s; follow it with: runway release show %s\n", rel.ID, rel.RollbackOf, rel.ID)
		return nil
	}
	err := followRelease(ctx, g, c, rel.ID)
	if err == nil {
		// The halt came after the window closed: the release retired the
		// previous version and ended Success.
		return fmt.Errorf("release %s had already retired release %s when the rollback arrived; run runway rollback again to release it anew", rel.ID, rel.RollbackOf)
	}
	last, gerr := c.Release(ctx, rel.ID)
	if gerr != nil {
		return gerr
	}
	if last.State != string(engine.StateFailureClean) || last.ErrorKind != engine.ErrHalted.Error() {
		return err
	}
	if !g.JSON() {
		fmt.Fprintf(g.Stdout, "rolled back: release %s serves again\n", rel.RollbackOf)
	}
	return nil
}
