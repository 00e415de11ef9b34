package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgresOptions tune a PostgreSQL store (docs/operations.md, "PostgreSQL").
type PostgresOptions struct {
	// Now is the clock for timestamps and lease expiry; time.Now by default.
	Now func() time.Time
	// MaxConns bounds the connections a server opens (20 by default);
	// MaxIdleConns keeps that many open between bursts (MaxConns/2).
	MaxConns, MaxIdleConns int
	// ConnMaxLifetime retires a connection after this long (30 min), so a
	// failover or a pooler's restart is picked up.
	ConnMaxLifetime time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout for every session
	// (10 s by default; 0 keeps the default, a negative value disables it):
	// a stuck statement fails instead of holding a release runner forever.
	StatementTimeout time.Duration
	// IdleInTransactionTimeout is PostgreSQL's
	// idle_in_transaction_session_timeout (5 s by default; 0 keeps the
	// default, a negative value disables it): a server paused or cut off
	// in the middle of a transaction has its session ended by PostgreSQL,
	// so the row and advisory locks it held do not stop the other replicas
	// from taking its releases over (its own next write is then refused by
	// fencing).
	IdleInTransactionTimeout time.Duration
}

// IsPostgresURL reports whether s names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// RedactURL returns u with its password replaced, for logs and errors.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return p.Redacted()
}

// OpenPostgres connects to the PostgreSQL database dsn (a postgres:// URL)
// and migrates it to the current schema. The connection string's password
// never appears in an error.
func OpenPostgres(ctx context.Context, dsn string, opts PostgresOptions) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 20
	}
	if opts.MaxIdleConns <= 0 {
		opts.MaxIdleConns = (opts.MaxConns + 1) / 2
	}
	if opts.ConnMaxLifetime <= 0 {
		opts.ConnMaxLifetime = 30 * time.Minute
	}
	if opts.StatementTimeout == 0 {
		opts.StatementTimeout = 10 * time.Second
	}
	if opts.IdleInTransactionTimeout == 0 {
		opts.IdleInTransactionTimeout = 5 * time.Second
	}
	where := RedactURL(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: not a valid PostgreSQL URL (postgres://user:password@host:port/database?sslmode=...): %v", where, scrub(err, dsn))
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if opts.StatementTimeout > 0 {
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	}
	if opts.IdleInTransactionTimeout > 0 {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(opts.IdleInTransactionTimeout.Milliseconds())
	}
	cfg.RuntimeParams["application_name"] = "runway"
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxIdleConns)
	db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to store %s: %v", where, scrub(err, dsn))
	}
	if err := migrate(ctx, db, dialectPostgres); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate store %s: %v", where, scrub(err, dsn))
	}
	return &DB{db: &conn{DB: db, dialect: dialectPostgres}, now: opts.Now}, nil
}

// scrub keeps a connection string's password out of an error's text.
func scrub(err error, dsn string) error {
	p, perr := url.Parse(dsn)
	if perr != nil {
		return err
	}
	if pw, ok := p.User.Password(); ok && pw != "" && strings.Contains(err.Error(), pw) {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

// Dialect names the store's database: "sqlite" or "postgres".
func (s *DB) Dialect() string {
	if s.db.dialect == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Ping checks that the database answers (for /v1/health).
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// SQL returns the database handle, for tests that tamper with the tables
// the way an intruder would.
func (s *DB) SQL() *sql.DB { return s.db.DB }
