// Package secrets keeps the values of secrets: versioned, encrypted at rest,
// and never shown but by an explicit read.
//
// Read in this order:
//
//   - secrets.go: Ref (project/environment/service/key; service "" is
//     environment-wide), Meta (what may be shown of a version: never its
//     value), Store (the small interface a release needs; a later target can
//     back it with AWS Secrets Manager or Kubernetes Secrets), Pin and
//     Resolve (which version a release pins: the service's own key first,
//     then the environment's).
//   - seal.go: envelope encryption. Each version gets a random 256-bit data
//     key; the value is sealed with XChaCha20-Poly1305 under it with the
//     version's identity as additional data, so a ciphertext moved to another
//     row (another key, service or version) fails to open; the data key is
//     wrapped by the master key, whose id is stored beside it.
//   - masterkey.go: the master key, from RUNWAY_MASTER_KEY (base64) or
//     DATA_DIR/master.key (0600, made on first start), never in the
//     database; rotation re-wraps every data key in one transaction.
//   - vault.go: Vault, the Store over sealed rows (Rows, which the SQLite
//     store implements).
//
// Decisions worth knowing: errors name the secret (project, environment,
// service, key, version) and never its value; a value is at most MaxValue
// bytes; a wrong or missing master key is refused before anything changes
// (OpenVault checks every key id the rows use).
//
// It is a leaf package: it imports nothing of Runway's but other leaves.
package secrets
