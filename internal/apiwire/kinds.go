package apiwire

// The kinds of problem the server returns (Problem.Kind, and the last
// segment of Problem.Type, slugged). Clients test them with client.IsKind;
// docs/api.md lists them.
const (
	// KindBadRelease: the release asked for cannot be made as given (version, sources, hooks).
	KindBadRelease = "BadRelease"
	// KindBadRequest: the request is malformed: a field is missing, of the wrong type or out of range (the detail names it).
	KindBadRequest = "BadRequest"
	// KindBodyTooLarge: the body is larger than the server accepts.
	KindBodyTooLarge = "BodyTooLarge"
	// KindConfirmationRequired: the environment is protected: send the request again with confirmed (the CLI asks, or --yes).
	KindConfirmationRequired = "ConfirmationRequired"
	// KindDigestMismatch: the Content-Digest header does not match the body.
	KindDigestMismatch = "DigestMismatch"
	// KindDigestMissing: a mutating request has no Content-Digest header.
	KindDigestMissing = "DigestMissing"
	// KindEnvironmentInUse: a project apply would remove or retarget an environment a release serves.
	KindEnvironmentInUse = "EnvironmentInUse"
	// KindForbidden: the caller's roles do not allow the action.
	KindForbidden = "Forbidden"
	// KindHostConflict: another service already serves a host the release asks for.
	KindHostConflict = "HostConflict"
	// KindInvalidManifest: the manifests do not validate; diagnostics locate each problem.
	KindInvalidManifest = "InvalidManifest"
	// KindLastAdmin: the change would leave the server without an enabled global admin.
	KindLastAdmin = "LastAdmin"
	// KindMasterKeyFromEnvironment: the master key comes from RUNWAY_MASTER_KEY, so the server cannot rotate it.
	KindMasterKeyFromEnvironment = "MasterKeyFromEnvironment"
	// KindMissingSecrets: the release names secret keys the store does not hold (all listed), or pins versions since deleted.
	KindMissingSecrets = "MissingSecrets"
	// KindNoDriver: no target of the environment's kind is registered on this server.
	KindNoDriver = "NoDriver"
	// KindNoSecretStore: this server keeps no secrets.
	KindNoSecretStore = "NoSecretStore"
	// KindNotFound: what the path names does not exist.
	KindNotFound = "NotFound"
	// KindNothingToRollBack: the service has no earlier release to roll back to.
	KindNothingToRollBack = "NothingToRollBack"
	// KindProjectChanged: the client's runway.hcl, or the base version of an apply, differs from the server's copy.
	KindProjectChanged = "ProjectChanged"
	// KindReleaseFinished: the release has ended; it cannot be halted.
	KindReleaseFinished = "ReleaseFinished"
	// KindRequestIDReused: a request id was used before for another request.
	KindRequestIDReused = "RequestIDReused"
	// KindRequestTimeout: the body did not arrive within the server's body timeout.
	KindRequestTimeout = "RequestTimeout"
	// KindSecretExists: the key already has a value: pass --overwrite to add a version.
	KindSecretExists = "SecretExists"
	// KindSecretInUse: a running release pins the secret: deploy without it first, or pass --force.
	KindSecretInUse = "SecretInUse"
	// KindSecretNotFound: no such secret key (or version).
	KindSecretNotFound = "SecretNotFound"
	// KindSecretUnreadable: a stored secret fails to open with the master key: restore the database or the key.
	KindSecretUnreadable = "SecretUnreadable"
	// KindStaleRequest: requested_at is outside the replay window.
	KindStaleRequest = "StaleRequest"
	// KindStoreUnavailable: the server cannot reach its store (the database is down or restarting): retry; the data plane keeps serving and releases resume when it is back.
	KindStoreUnavailable = "StoreUnavailable"
	// KindTokenExpired: the token has expired.
	KindTokenExpired = "TokenExpired"
	// KindTokenRevoked: the token was revoked.
	KindTokenRevoked = "TokenRevoked"
	// KindTooManyAttempts: too many failed authentications from this address; wait and retry.
	KindTooManyAttempts = "TooManyAttempts"
	// KindUnauthorized: the request has no valid token.
	KindUnauthorized = "Unauthorized"
	// KindUnknownEnvironment: the project has no such environment.
	KindUnknownEnvironment = "UnknownEnvironment"
	// KindUnknownProject: the server holds no such project (runway project apply registers it).
	KindUnknownProject = "UnknownProject"
	// KindUnknownToken: the token is not one the server issued.
	KindUnknownToken = "UnknownToken"
	// KindUnknownUser: no such user.
	KindUnknownUser = "UnknownUser"
	// KindUserDisabled: the token's user is disabled.
	KindUserDisabled = "UserDisabled"
	// KindUserExists: a user of that name exists.
	KindUserExists = "UserExists"
)
