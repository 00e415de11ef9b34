package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
)

// dialect is the SQL database a store runs on. The store's statements are
// written once, in the subset SQLite and PostgreSQL share (docs/design.md,
// "One store, two databases"); conn translates the little that differs:
// placeholders (? becomes $n), booleans bound to the INTEGER 0/1 columns,
// and errors classified by SQLSTATE rather than by SQLite's messages.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// conn is the store's database handle: *sql.DB plus the dialect's
// translation. It has the *sql.DB methods the store uses, so the store's
// statements read the same for both databases.
type conn struct {
	*sql.DB
	dialect dialect
	rebound sync.Map // query → rebound query
}

// Lock keys of the transactions that read, then write what they read
// (arbitrary constants, "rw" and a letter in ASCII).
const (
	lockAudit   = 0x727761 // the audit chain's next sequence number and link
	lockSecrets = 0x727773 // a secret's next version
)

func (c *conn) rebind(q string) string {
	if c.dialect != dialectPostgres {
		return q
	}
	if r, ok := c.rebound.Load(q); ok {
		return r.(string)
	}
	var b strings.Builder
	n := 0
	inString := false
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case ch == '\'':
			inString = !inString
			b.WriteByte(ch)
		case ch == '?' && !inString:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(ch)
		}
	}
	r := b.String()
	c.rebound.Store(q, r)
	return r
}

// args binds Go booleans as 0/1: the schema's flags are INTEGER columns on
// both databases (SQLite has no boolean type).
func (c *conn) args(args []any) []any {
	if c.dialect != dialectPostgres {
		return args
	}
	for i, a := range args {
		if b, ok := a.(bool); ok {
			v := int64(0)
			if b {
				v = 1
			}
			args[i] = v
		}
	}
	return args
}

func (c *conn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.DB.ExecContext(ctx, c.rebind(q), c.args(args)...)
}

func (c *conn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return c.DB.QueryContext(ctx, c.rebind(q), c.args(args)...)
}

func (c *conn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return c.DB.QueryRowContext(ctx, c.rebind(q), c.args(args)...)
}

// BeginTx begins a transaction. Its statements each see the latest
// committed rows (PostgreSQL's READ COMMITTED; SQLite has one writer).
func (c *conn) BeginTx(ctx context.Context, opts *sql.TxOptions) (*tx, error) {
	t, err := c.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &tx{Tx: t, c: c}, nil
}

// beginSerial begins a transaction that reads, then writes what it read
// (the audit chain's next entry, a secret's next version). SQLite's single
// writer serializes it already; on PostgreSQL it first takes the advisory
// transaction lock key, so such transactions of every replica take turns
// rather than fail on a duplicate key. Others never wait for it.
func (c *conn) beginSerial(ctx context.Context, key int64) (*tx, error) {
	t, err := c.BeginTx(ctx, nil)
	if err != nil || c.dialect != dialectPostgres {
		return t, err
	}
	if _, err := t.Tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		t.Rollback()
		return nil, err
	}
	return t, nil
}

// tx is a transaction with its conn's translation.
type tx struct {
	*sql.Tx
	c *conn
}

func (t *tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.c.rebind(q), t.c.args(args)...)
}

func (t *tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.c.rebind(q), t.c.args(args)...)
}

func (t *tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.c.rebind(q), t.c.args(args)...)
}

// isUnique reports a unique-constraint violation on either database.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isForeignKey reports a foreign-key violation on either database.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY")
}

// ErrUnavailable marks an error of a store that cannot be reached (the
// database is down, restarting, or the network to it is): the request may
// succeed later. Unavailable tells it from the others.
var ErrUnavailable = errors.New("the store is unavailable")

// Unavailable reports whether err comes from a store that could not be
// reached or did not answer in time, as opposed to one that refused the
// statement: the API answers it 503, the engine retries the step later.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exceptions; 57P01-57P03: the server shuts
		// down or is starting; 57014: statement_timeout; 53300: too many
		// connections; 25P03: the session ended by
		// idle_in_transaction_session_timeout (this server was paused mid-
		// transaction: what it does next is fenced).
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" ||
			pe.Code == "57014" || pe.Code == "53300" || pe.Code == "25P03"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	// A network error talking to the database (not a context's deadline:
	// that is the caller's, and says nothing of the store).
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}
