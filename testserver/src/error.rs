//! MongoDB command errors: the `{ok: 0, errmsg, code, codeName}` shape every
//! command failure takes on the wire, and the table of code names.
//!
//! Drivers and our daemon branch on `code` (and sometimes `codeName`), so the
//! numbers here must be the ones real MongoDB uses (see
//! `src/mongo/base/error_codes.yml` in the server source).

use bson::{doc, Document};

/// A command failure as MongoDB reports it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code_name} ({code}): {errmsg}")]
pub struct CommandError {
    pub code: i32,
    pub code_name: String,
    pub errmsg: String,
}

impl CommandError {
    /// An error with a well-known code; the code name comes from the table.
    pub fn new(code: i32, errmsg: impl Into<String>) -> Self {
        CommandError {
            code,
            code_name: code_name(code).to_string(),
            errmsg: errmsg.into(),
        }
    }

    pub fn bad_value(errmsg: impl Into<String>) -> Self {
        Self::new(codes::BAD_VALUE, errmsg)
    }

    pub fn type_mismatch(errmsg: impl Into<String>) -> Self {
        Self::new(codes::TYPE_MISMATCH, errmsg)
    }

    pub fn failed_to_parse(errmsg: impl Into<String>) -> Self {
        Self::new(codes::FAILED_TO_PARSE, errmsg)
    }

    /// The reply document for this error (without `$clusterTime`, which the
    /// dispatcher adds to every reply).
    pub fn to_reply(&self) -> Document {
        doc! {
            "ok": 0.0,
            "errmsg": self.errmsg.clone(),
            "code": self.code,
            "codeName": self.code_name.clone(),
        }
    }
}

/// Error codes used by the server, named as in MongoDB's `error_codes.yml`.
pub mod codes {
    pub const INTERNAL_ERROR: i32 = 1;
    pub const BAD_VALUE: i32 = 2;
    pub const NO_SUCH_KEY: i32 = 4;
    pub const FAILED_TO_PARSE: i32 = 9;
    pub const TYPE_MISMATCH: i32 = 14;
    pub const INVALID_LENGTH: i32 = 16;
    pub const ILLEGAL_OPERATION: i32 = 20;
    pub const NAMESPACE_NOT_FOUND: i32 = 26;
    pub const INDEX_NOT_FOUND: i32 = 27;
    pub const CONFLICTING_UPDATE_OPERATORS: i32 = 40;
    pub const CURSOR_NOT_FOUND: i32 = 43;
    pub const NAMESPACE_EXISTS: i32 = 48;
    pub const MAX_TIME_MS_EXPIRED: i32 = 50;
    pub const DOLLAR_PREFIXED_FIELD_NAME: i32 = 52;
    pub const EMPTY_FIELD_NAME: i32 = 56;
    pub const COMMAND_NOT_FOUND: i32 = 59;
    pub const IMMUTABLE_FIELD: i32 = 66;
    pub const CANNOT_CREATE_INDEX: i32 = 67;
    pub const INDEX_ALREADY_EXISTS: i32 = 68;
    pub const INVALID_OPTIONS: i32 = 72;
    pub const INVALID_NAMESPACE: i32 = 73;
    pub const NO_REPLICATION_ENABLED: i32 = 76;
    pub const INDEX_OPTIONS_CONFLICT: i32 = 85;
    pub const INDEX_KEY_SPECS_CONFLICT: i32 = 86;
    pub const SHUTDOWN_IN_PROGRESS: i32 = 91;
    pub const OPERATION_FAILED: i32 = 96;
    pub const COMMAND_NOT_SUPPORTED: i32 = 115;
    pub const CAPPED_POSITION_LOST: i32 = 136;
    pub const QUERY_PLAN_KILLED: i32 = 175;
    pub const UNSUPPORTED_OP_QUERY_COMMAND: i32 = 352;
    pub const INVALID_ID_FIELD: i32 = 53;
    pub const COMMAND_NOT_SUPPORTED_ON_VIEW: i32 = 166;
    pub const INVALID_INDEX_SPECIFICATION_OPTION: i32 = 197;
    pub const DUPLICATE_KEY: i32 = 11000;
}

/// The `codeName` MongoDB sends for `code`. Codes we do not know are named
/// `Location<code>`, which is what the server itself does for assertion ids.
pub fn code_name(code: i32) -> String {
    let name = match code {
        0 => "OK",
        1 => "InternalError",
        2 => "BadValue",
        4 => "NoSuchKey",
        5 => "GraphContainsCycle",
        6 => "HostUnreachable",
        7 => "HostNotFound",
        8 => "UnknownError",
        9 => "FailedToParse",
        10 => "CannotMutateObject",
        11 => "UserNotFound",
        12 => "UnsupportedFormat",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        15 => "Overflow",
        16 => "InvalidLength",
        17 => "ProtocolError",
        18 => "AuthenticationFailed",
        20 => "IllegalOperation",
        24 => "LockTimeout",
        26 => "NamespaceNotFound",
        27 => "IndexNotFound",
        28 => "PathNotViable",
        34 => "CannotBackfillArray",
        37 => "FileRenameFailed",
        40 => "ConflictingUpdateOperators",
        43 => "CursorNotFound",
        46 => "LockBusy",
        48 => "NamespaceExists",
        50 => "MaxTimeMSExpired",
        52 => "DollarPrefixedFieldName",
        53 => "InvalidIdField",
        54 => "NotSingleValueField",
        56 => "EmptyFieldName",
        59 => "CommandNotFound",
        63 => "StaleShardVersion",
        66 => "ImmutableField",
        67 => "CannotCreateIndex",
        68 => "IndexAlreadyExists",
        72 => "InvalidOptions",
        73 => "InvalidNamespace",
        76 => "NoReplicationEnabled",
        85 => "IndexOptionsConflict",
        86 => "IndexKeySpecsConflict",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        96 => "OperationFailed",
        112 => "WriteConflict",
        115 => "CommandNotSupported",
        121 => "DocumentValidationFailure",
        136 => "CappedPositionLost",
        166 => "CommandNotSupportedOnView",
        168 => "InvalidPipelineOperator",
        175 => "QueryPlanKilled",
        189 => "PrimarySteppedDown",
        197 => "InvalidIndexSpecificationOption",
        202 => "NetworkInterfaceExceededTimeLimit",
        238 => "NotImplemented",
        251 => "NoSuchTransaction",
        262 => "ExceededTimeLimit",
        352 => "UnsupportedOpQueryCommand",
        280 => "ChangeStreamFatalError",
        286 => "ChangeStreamHistoryLost",
        9001 => "SocketException",
        10107 => "NotWritablePrimary",
        10334 => "BSONObjectTooLarge",
        11000 => "DuplicateKey",
        11600 => "InterruptedAtShutdown",
        11601 => "Interrupted",
        11602 => "InterruptedDueToReplStateChange",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        _ => return format!("Location{code}"),
    };
    name.to_string()
}

pub type CmdResult<T> = Result<T, CommandError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_code_names() {
        assert_eq!(code_name(59), "CommandNotFound");
        assert_eq!(code_name(136), "CappedPositionLost");
        assert_eq!(code_name(76), "NoReplicationEnabled");
        assert_eq!(code_name(424242), "Location424242");
        let reply = CommandError::new(11000, "E11000 duplicate key error").to_reply();
        assert_eq!(reply.get_str("codeName").unwrap(), "DuplicateKey");
        assert_eq!(reply.get_f64("ok").unwrap(), 0.0);
    }
}
