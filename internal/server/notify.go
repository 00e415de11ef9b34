package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/secrets"
	"github.com/runwayhq/runway/internal/store"
)

// SecretSource gives the server the signing key of a notify channel
// (`notify "ops" { secret = "OPS_WEBHOOK_KEY" }` names it) for a
// notification about an environment of a project.
type SecretSource interface {
	Secret(ctx context.Context, project, environment, name string) ([]byte, error)
}

// VaultSecrets reads a channel's signing key from the secret store: the
// environment-wide secret of that name in the notification's environment
// (runway secret put --env ENV NAME=...), its current version.
type VaultSecrets struct{ Vault *secrets.Vault }

// Secret implements SecretSource.
func (v VaultSecrets) Secret(ctx context.Context, project, environment, name string) ([]byte, error) {
	val, _, err := v.Vault.Value(ctx, secrets.Ref{Project: project, Environment: environment, Key: name}, 0)
	if errors.Is(err, secrets.ErrNotFound) {
		return nil, fmt.Errorf("signing key %s is not in the secret store for environment %s: runway secret put --env %s %s=... (environment-wide)", name, environment, environment, name)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", name, err)
	}
	return val, nil
}

// Headers of a notification.
const (
	HeaderSignature = "X-Runway-Signature" // sha256=<hex HMAC-SHA256 of timestamp "." body>
	HeaderTimestamp = "X-Runway-Timestamp" // Unix seconds, part of what is signed
	HeaderDelivery  = "X-Runway-Delivery"  // the notification's id, the same on every attempt
)

// Sign is the signature of a notification's body sent at ts under key:
// "sha256=" and the hex HMAC-SHA256 of ts, ".", body. A receiver recomputes
// it and refuses a timestamp far from its clock (a replay).
func Sign(key []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Delivery bounds: attempts back off from retryBase, doubling to
// retryMax, until the notification is notifyGiveUp old.
const (
	retryBase    = time.Second
	retryMax     = 2 * time.Minute
	notifyGiveUp = 10 * time.Minute
)

// notifier delivers queued notifications (store.Notification) to their
// channels' webhooks, retrying with backoff; every attempt is recorded.
type notifier struct {
	b       *backend
	secrets SecretSource
	client  *http.Client
	poll    time.Duration
	now     func() time.Time
	// notified, when set, counts attempts by result (delivered, retried, failed).
	notified func(result string)
}

func (n *notifier) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(n.poll)
	defer t.Stop()
	for {
		due, err := n.b.st.ListNotifications(ctx, store.NotificationFilter{Due: n.now(), Limit: 20})
		if err == nil {
			for _, x := range due {
				n.deliver(ctx, x)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deliver makes one attempt and records its outcome.
func (n *notifier) deliver(ctx context.Context, x *store.Notification) {
	x.Attempts++
	err := n.send(ctx, x)
	if ctx.Err() != nil {
		return // the server stops: the next one tries again
	}
	now := n.now()
	result := "retried"
	defer func() {
		if n.notified != nil {
			n.notified(result)
		}
	}()
	switch {
	case err == nil:
		result = "delivered"
		x.State, x.DeliveredAt, x.LastError = store.NotificationDelivered, now, ""
	case now.Sub(x.CreatedAt) >= notifyGiveUp:
		result = "failed"
		x.State, x.LastError = store.NotificationFailed, err.Error()
		n.b.record(ctx, &store.ServiceEvent{Kind: "notification.failed", Project: x.Project, Environment: x.Environment, Service: x.Service,
			Actor: "runway", Target: "notify " + x.Channel, Message: fmt.Sprintf("notification of alarm %s to %s failed after %d attempts: %s", x.Alarm, x.Channel, x.Attempts, err)})
	default:
		wait := retryBase << min(x.Attempts-1, 10)
		x.LastError, x.NextAt = err.Error(), now.Add(min(wait, retryMax))
	}
	if uerr := n.b.st.UpdateNotification(context.WithoutCancel(ctx), x); uerr != nil {
		n.b.log.Warn("record notification attempt", "id", x.ID, "err", uerr)
	}
}

// send POSTs the notification to its channel's webhook, signed when the
// channel names a key. Errors never carry the webhook's URL (it may hold a
// token) nor the key.
func (n *notifier) send(ctx context.Context, x *store.Notification) error {
	_, def, err := n.b.loadProject(ctx, x.Project)
	if err != nil {
		return fmt.Errorf("read project %s: %w", x.Project, err)
	}
	var webhook, secret string
	found := false
	for _, ch := range def.Notify {
		if ch.Name == x.Channel {
			webhook, secret, found = ch.Webhook, ch.Secret, true
		}
	}
	if !found {
		return fmt.Errorf("project %s has no notify channel %q any more", x.Project, x.Channel)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(x.Payload))
	if err != nil {
		return fmt.Errorf("notify channel %s: its webhook is not a valid URL", x.Channel)
	}
	ts := n.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "runway-notify")
	req.Header.Set(HeaderDelivery, x.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	if secret != "" {
		key, err := n.secrets.Secret(ctx, x.Project, x.Environment, secret)
		if err != nil {
			return err
		}
		req.Header.Set(HeaderSignature, Sign(key, ts, x.Payload))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post to notify channel %s: %v", x.Channel, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("notify channel %s answered %s", x.Channel, resp.Status)
	}
	return nil
}
