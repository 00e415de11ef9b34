package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/engine"
)

// followRelease prints a release's events as they happen until it ends.
func followRelease(ctx context.Context, g *Globals, c *client.Client, id string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	seen := 0
	var last *apiwire.ReleaseDetail
	lastProgress := ""
	for {
		rel, err := c.Release(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				stoppedFollowing(g, id, last)
				return silentError{ExitFailure}
			}
			return err
		}
		last = rel
		if !g.JSON() {
			for _, e := range rel.Events[seen:] {
				eventLine(g.Stdout, e)
			}
			// Live progress: what runs and where traffic goes, printed
			// when it changes. Status is best effort: a failure to read
			// it must not end the follow. No timestamp: it is when the
			// CLI looked, not when the release did something, and would
			// interleave out of order with the events' times.
			if st, err := c.Status(ctx, rel.Project, rel.Environment, rel.Service); err == nil {
				if p := progressLine(st); p != lastProgress {
					progressRow(g.Stdout, rel.State, p)
					lastProgress = p
				}
			}
		}
		seen = len(rel.Events)
		if rel.Done {
			break
		}
		select {
		case <-ctx.Done():
			stoppedFollowing(g, id, last)
			return silentError{ExitFailure}
		case <-time.After(300 * time.Millisecond):
		}
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
