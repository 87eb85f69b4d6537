//! Resource managers: the id → name table (`rmgrlist.h`, the same 22 built-ins in 14–18,
//! custom ids 128–255 from 15), and each record type's name (`pg_waldump`'s `identify`:
//! `Heap INSERT`, `HOT_UPDATE+INIT`, `XLOG CHECKPOINT_ONLINE`, …) per major.

use std::fmt;

use crate::PgMajor;
use crate::record::XLR_INFO_MASK;

/// A resource manager id (`xl_rmid`).
///
/// ```
/// use pgwalrus_wal::PgMajor;
/// use pgwalrus_wal::rmgr::RmgrId;
///
/// assert_eq!(RmgrId::HEAP.to_string(), "Heap");
/// assert_eq!(RmgrId(130).to_string(), "custom130");
/// assert!(RmgrId(130).is_valid(PgMajor::V15) && !RmgrId(130).is_valid(PgMajor::V14));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RmgrId(pub u8);

/// The built-in resource managers' names, by id.
const BUILTIN_NAMES: [&str; 22] = [
    "XLOG",
    "Transaction",
    "Storage",
    "CLOG",
    "Database",
    "Tablespace",
    "MultiXact",
    "RelMap",
    "Standby",
    "Heap2",
    "Heap",
    "Btree",
    "Hash",
    "Gin",
    "Gist",
    "Sequence",
    "SPGist",
    "BRIN",
    "CommitTs",
    "ReplicationOrigin",
    "Generic",
    "LogicalMessage",
];

impl RmgrId {
    /// `RM_XLOG_ID`.
    pub const XLOG: RmgrId = RmgrId(0);
    /// `RM_XACT_ID`.
    pub const XACT: RmgrId = RmgrId(1);
    /// `RM_SMGR_ID`.
    pub const SMGR: RmgrId = RmgrId(2);
    /// `RM_CLOG_ID`.
    pub const CLOG: RmgrId = RmgrId(3);
    /// `RM_DBASE_ID`.
    pub const DBASE: RmgrId = RmgrId(4);
    /// `RM_TBLSPC_ID`.
    pub const TBLSPC: RmgrId = RmgrId(5);
    /// `RM_MULTIXACT_ID`.
    pub const MULTIXACT: RmgrId = RmgrId(6);
    /// `RM_RELMAP_ID`.
    pub const RELMAP: RmgrId = RmgrId(7);
    /// `RM_STANDBY_ID`.
    pub const STANDBY: RmgrId = RmgrId(8);
    /// `RM_HEAP2_ID`.
    pub const HEAP2: RmgrId = RmgrId(9);
    /// `RM_HEAP_ID`.
    pub const HEAP: RmgrId = RmgrId(10);
    /// `RM_BTREE_ID`.
    pub const BTREE: RmgrId = RmgrId(11);
    /// `RM_HASH_ID`.
    pub const HASH: RmgrId = RmgrId(12);
    /// `RM_GIN_ID`.
    pub const GIN: RmgrId = RmgrId(13);
    /// `RM_GIST_ID`.
    pub const GIST: RmgrId = RmgrId(14);
    /// `RM_SEQ_ID`.
    pub const SEQ: RmgrId = RmgrId(15);
    /// `RM_SPGIST_ID`.
    pub const SPGIST: RmgrId = RmgrId(16);
    /// `RM_BRIN_ID`.
    pub const BRIN: RmgrId = RmgrId(17);
    /// `RM_COMMIT_TS_ID`.
    pub const COMMIT_TS: RmgrId = RmgrId(18);
    /// `RM_REPLORIGIN_ID`.
    pub const REPLORIGIN: RmgrId = RmgrId(19);
    /// `RM_GENERIC_ID`.
    pub const GENERIC: RmgrId = RmgrId(20);
    /// `RM_LOGICALMSG_ID`.
    pub const LOGICALMSG: RmgrId = RmgrId(21);
    /// The first id reserved for extensions' custom resource managers (15 and later).
    pub const MIN_CUSTOM: RmgrId = RmgrId(128);

    /// The built-in resource manager's name (`XLOG`, `Heap`, …); `None` otherwise.
    pub fn builtin_name(self) -> Option<&'static str> {
        BUILTIN_NAMES.get(usize::from(self.0)).copied()
    }

    /// Whether the id is a built-in resource manager.
    pub fn is_builtin(self) -> bool {
        self.builtin_name().is_some()
    }

    /// Whether the id is in the custom range (128–255).
    pub fn is_custom(self) -> bool {
        self >= RmgrId::MIN_CUSTOM
    }

    /// Whether a record of `major` may carry this id (`RmgrIdIsValid`): built-ins always,
    /// custom ids from 15 on.
    pub fn is_valid(self, major: PgMajor) -> bool {
        self.is_builtin() || (major >= PgMajor::V15 && self.is_custom())
    }

    /// Every valid id of `major`, in id order.
    pub fn all(major: PgMajor) -> impl Iterator<Item = RmgrId> {
        (0..=u8::MAX).map(RmgrId).filter(move |r| r.is_valid(major))
    }
}

impl fmt::Display for RmgrId {
    /// The name `pg_waldump` prints: the built-in name, `custom%03d` for custom ids, and
    /// `unknown%u` for ids no server writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.builtin_name() {
            Some(name) => f.pad(name),
            None if self.is_custom() => f.pad(&format!("custom{:03}", self.0)),
            None => f.pad(&format!("unknown{}", self.0)),
        }
    }
}

/// `XLOG` record type: checkpoint at shutdown.
pub const XLOG_CHECKPOINT_SHUTDOWN: u8 = 0x00;
/// `XLOG` record type: online checkpoint.
pub const XLOG_CHECKPOINT_ONLINE: u8 = 0x10;
/// `XLOG` record type: no-op.
pub const XLOG_NOOP: u8 = 0x20;
/// `XLOG` record type: next OID.
pub const XLOG_NEXTOID: u8 = 0x30;
/// `XLOG` record type: segment switch; the rest of the segment is padding.
pub const XLOG_SWITCH: u8 = 0x40;
/// `XLOG` record type: end of an online backup.
pub const XLOG_BACKUP_END: u8 = 0x50;
/// `XLOG` record type: parameter change.
pub const XLOG_PARAMETER_CHANGE: u8 = 0x60;
/// `XLOG` record type: named restore point.
pub const XLOG_RESTORE_POINT: u8 = 0x70;
/// `XLOG` record type: `full_page_writes` changed.
pub const XLOG_FPW_CHANGE: u8 = 0x80;
/// `XLOG` record type: end of recovery.
pub const XLOG_END_OF_RECOVERY: u8 = 0x90;
/// `XLOG` record type: full-page image for a hint-bit change.
pub const XLOG_FPI_FOR_HINT: u8 = 0xA0;
/// `XLOG` record type: full-page image.
pub const XLOG_FPI: u8 = 0xB0;
/// `XLOG` record type: marks an aborted, overwritten multi-page record.
pub const XLOG_OVERWRITE_CONTRECORD: u8 = 0xD0;
/// `XLOG` record type: redo point of an online checkpoint (17 and later).
pub const XLOG_CHECKPOINT_REDO: u8 = 0xE0;

/// The record type's name for `rmid` and the full `xl_info` byte, as `pg_waldump` prints
/// it after `desc:`; `None` where `pg_waldump` prints `UNKNOWN (x)`.
///
/// ```
/// use pgwalrus_wal::PgMajor;
/// use pgwalrus_wal::rmgr::{RmgrId, identify};
///
/// assert_eq!(identify(PgMajor::V15, RmgrId::HEAP, 0xC0), Some("HOT_UPDATE+INIT"));
/// assert_eq!(identify(PgMajor::V16, RmgrId::HEAP2, 0x10), Some("PRUNE"));
/// assert_eq!(identify(PgMajor::V17, RmgrId::HEAP2, 0x10), Some("PRUNE_ON_ACCESS"));
/// assert_eq!(identify(PgMajor::V15, RmgrId::XLOG, 0xE0), None);
/// ```
pub fn identify(major: PgMajor, rmid: RmgrId, info: u8) -> Option<&'static str> {
    let op = info & !XLR_INFO_MASK;
    let v15 = major >= PgMajor::V15;
    let v17 = major >= PgMajor::V17;
    Some(match rmid {
        RmgrId::XLOG => match op {
            0x00 => "CHECKPOINT_SHUTDOWN",
            0x10 => "CHECKPOINT_ONLINE",
            0x20 => "NOOP",
            0x30 => "NEXTOID",
            0x40 => "SWITCH",
            0x50 => "BACKUP_END",
            0x60 => "PARAMETER_CHANGE",
            0x70 => "RESTORE_POINT",
            0x80 => "FPW_CHANGE",
            0x90 => "END_OF_RECOVERY",
            0xA0 => "FPI_FOR_HINT",
            0xB0 => "FPI",
            0xD0 => "OVERWRITE_CONTRECORD",
            0xE0 if v17 => "CHECKPOINT_REDO",
            _ => return None,
        },
        RmgrId::XACT => match info & 0x70 {
            0x00 => "COMMIT",
            0x10 => "PREPARE",
            0x20 => "ABORT",
            0x30 => "COMMIT_PREPARED",
            0x40 => "ABORT_PREPARED",
            0x50 => "ASSIGNMENT",
            0x60 => "INVALIDATION",
            _ => return None,
        },
        RmgrId::SMGR => match op {
            0x10 => "CREATE",
            0x20 => "TRUNCATE",
            _ => return None,
        },
        RmgrId::CLOG => match op {
            0x00 => "ZEROPAGE",
            0x10 => "TRUNCATE",
            _ => return None,
        },
        RmgrId::DBASE => match (op, v15) {
            (0x00, false) => "CREATE",
            (0x10, false) => "DROP",
            (0x00, true) => "CREATE_FILE_COPY",
            (0x10, true) => "CREATE_WAL_LOG",
            (0x20, true) => "DROP",
            _ => return None,
        },
        RmgrId::TBLSPC => match op {
            0x00 => "CREATE",
            0x10 => "DROP",
            _ => return None,
        },
        RmgrId::MULTIXACT => match op {
            0x00 => "ZERO_OFF_PAGE",
            0x10 => "ZERO_MEM_PAGE",
            0x20 => "CREATE_ID",
            0x30 => "TRUNCATE_ID",
            _ => return None,
        },
        RmgrId::RELMAP => match op {
            0x00 => "UPDATE",
            _ => return None,
        },
        RmgrId::SEQ => match op {
            0x00 => "LOG",
            _ => return None,
        },
        RmgrId::STANDBY => match op {
            0x00 => "LOCK",
            0x10 => "RUNNING_XACTS",
            0x20 => "INVALIDATIONS",
            _ => return None,
        },
        RmgrId::HEAP2 => match (op, v17) {
            (0x00, _) => "REWRITE",
            (0x10, false) => "PRUNE",
            (0x20, false) => "VACUUM",
            (0x30, false) => "FREEZE_PAGE",
            (0x10, true) => "PRUNE_ON_ACCESS",
            (0x20, true) => "PRUNE_VACUUM_SCAN",
            (0x30, true) => "PRUNE_VACUUM_CLEANUP",
            (0x40, _) => "VISIBLE",
            (0x50, _) => "MULTI_INSERT",
            (0xD0, _) => "MULTI_INSERT+INIT",
            (0x60, _) => "LOCK_UPDATED",
            (0x70, _) => "NEW_CID",
            _ => return None,
        },
        RmgrId::HEAP => match op {
            0x00 => "INSERT",
            0x80 => "INSERT+INIT",
            0x10 => "DELETE",
            0x20 => "UPDATE",
            0xA0 => "UPDATE+INIT",
            0x40 => "HOT_UPDATE",
            0xC0 => "HOT_UPDATE+INIT",
            0x30 => "TRUNCATE",
            0x50 => "HEAP_CONFIRM",
            0x60 => "LOCK",
            0x70 => "INPLACE",
            _ => return None,
        },
        RmgrId::BTREE => match op {
            0x00 => "INSERT_LEAF",
            0x10 => "INSERT_UPPER",
            0x20 => "INSERT_META",
            0x30 => "SPLIT_L",
            0x40 => "SPLIT_R",
            0x50 => "INSERT_POST",
            0x60 => "DEDUP",
            0x70 => "DELETE",
            0x80 => "UNLINK_PAGE",
            0x90 => "UNLINK_PAGE_META",
            0xA0 => "NEWROOT",
            0xB0 => "MARK_PAGE_HALFDEAD",
            0xC0 => "VACUUM",
            0xD0 => "REUSE_PAGE",
            0xE0 => "META_CLEANUP",
            _ => return None,
        },
        RmgrId::HASH => match op {
            0x00 => "INIT_META_PAGE",
            0x10 => "INIT_BITMAP_PAGE",
            0x20 => "INSERT",
            0x30 => "ADD_OVFL_PAGE",
            0x40 => "SPLIT_ALLOCATE_PAGE",
            0x50 => "SPLIT_PAGE",
            0x60 => "SPLIT_COMPLETE",
            0x70 => "MOVE_PAGE_CONTENTS",
            0x80 => "SQUEEZE_PAGE",
            0x90 => "DELETE",
            0xA0 => "SPLIT_CLEANUP",
            0xB0 => "UPDATE_META_PAGE",
            0xC0 => "VACUUM_ONE_PAGE",
            _ => return None,
        },
        RmgrId::GIN => match op {
            0x10 => "CREATE_PTREE",
            0x20 => "INSERT",
            0x30 => "SPLIT",
            0x40 => "VACUUM_PAGE",
            0x90 => "VACUUM_DATA_LEAF_PAGE",
            0x50 => "DELETE_PAGE",
            0x60 => "UPDATE_META_PAGE",
            0x70 => "INSERT_LISTPAGE",
            0x80 => "DELETE_LISTPAGE",
            _ => return None,
        },
        RmgrId::GIST => match op {
            0x00 => "PAGE_UPDATE",
            0x10 => "DELETE",
            0x20 => "PAGE_REUSE",
            0x30 => "PAGE_SPLIT",
            0x60 => "PAGE_DELETE",
            0x70 => "ASSIGN_LSN",
            _ => return None,
        },
        RmgrId::SPGIST => match op {
            0x10 => "ADD_LEAF",
            0x20 => "MOVE_LEAFS",
            0x30 => "ADD_NODE",
            0x40 => "SPLIT_TUPLE",
            0x50 => "PICKSPLIT",
            0x60 => "VACUUM_LEAF",
            0x70 => "VACUUM_ROOT",
            0x80 => "VACUUM_REDIRECT",
            _ => return None,
        },
        RmgrId::BRIN => match op {
            0x00 => "CREATE_INDEX",
            0x10 => "INSERT",
            0x90 => "INSERT+INIT",
            0x20 => "UPDATE",
            0xA0 => "UPDATE+INIT",
            0x30 => "SAMEPAGE_UPDATE",
            0x40 => "REVMAP_EXTEND",
            0x50 => "DESUMMARIZE",
            _ => return None,
        },
        // Unmasked: these two identify routines compare the whole byte.
        RmgrId::COMMIT_TS => match info {
            0x00 => "ZEROPAGE",
            0x10 => "TRUNCATE",
            _ => return None,
        },
        RmgrId::REPLORIGIN => match info {
            0x00 => "SET",
            0x10 => "DROP",
            _ => return None,
        },
        RmgrId::GENERIC => "Generic",
        RmgrId::LOGICALMSG => match op {
            0x00 => "MESSAGE",
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_validity() {
        assert_eq!(RmgrId::XLOG.to_string(), "XLOG");
        assert_eq!(RmgrId::LOGICALMSG.to_string(), "LogicalMessage");
        assert_eq!(RmgrId(22).to_string(), "unknown22");
        assert_eq!(RmgrId(255).to_string(), "custom255");
        assert_eq!(format!("{:<11}|", RmgrId::HEAP), "Heap       |");
        assert_eq!(RmgrId::all(PgMajor::V14).count(), 22);
        assert_eq!(RmgrId::all(PgMajor::V18).count(), 22 + 128);
        assert!(!RmgrId(22).is_valid(PgMajor::V18));
    }

    #[test]
    fn identify_differs_by_major_where_the_server_changed() {
        assert_eq!(identify(PgMajor::V14, RmgrId::DBASE, 0x00), Some("CREATE"));
        assert_eq!(identify(PgMajor::V14, RmgrId::DBASE, 0x20), None);
        assert_eq!(
            identify(PgMajor::V15, RmgrId::DBASE, 0x00),
            Some("CREATE_FILE_COPY")
        );
        assert_eq!(identify(PgMajor::V15, RmgrId::DBASE, 0x20), Some("DROP"));
        assert_eq!(
            identify(PgMajor::V17, RmgrId::XLOG, 0xE0),
            Some("CHECKPOINT_REDO")
        );
        assert_eq!(
            identify(PgMajor::V16, RmgrId::HEAP2, 0x30),
            Some("FREEZE_PAGE")
        );
        assert_eq!(
            identify(PgMajor::V18, RmgrId::HEAP2, 0x30),
            Some("PRUNE_VACUUM_CLEANUP")
        );
    }

    #[test]
    fn identify_masks_like_the_server() {
        // Low bits are the WAL machinery's and ignored by most...
        assert_eq!(identify(PgMajor::V15, RmgrId::HEAP, 0x01), Some("INSERT"));
        // ...but transaction records use only the opcode bits, with 0x80 a flag,
        assert_eq!(identify(PgMajor::V15, RmgrId::XACT, 0x80), Some("COMMIT"));
        // and CommitTs / ReplicationOrigin compare the whole byte.
        assert_eq!(identify(PgMajor::V15, RmgrId::COMMIT_TS, 0x11), None);
        assert_eq!(
            identify(PgMajor::V15, RmgrId::REPLORIGIN, 0x10),
            Some("DROP")
        );
        assert_eq!(identify(PgMajor::V15, RmgrId::HEAP2, 0x90), None);
        assert_eq!(identify(PgMajor::V15, RmgrId(200), 0x00), None);
        assert_eq!(
            identify(PgMajor::V15, RmgrId::GENERIC, 0x70),
            Some("Generic")
        );
    }
}
