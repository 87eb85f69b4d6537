//! Typed replication commands on a [`Connection`]: `IDENTIFY_SYSTEM`, `SHOW`,
//! `TIMELINE_HISTORY`, and slot creation, inspection and removal.

use pgwalrus_proto::ProtoError;
use pgwalrus_proto::replication::commands::{self, PG15};
use pgwalrus_proto::replication::{
    CreatedSlot, SlotInfo, SystemIdentity, TimelineHistoryFile, show_value,
};
use pgwalrus_wal::{TimeLineId, WalSegSize};

use crate::connection::Connection;
use crate::error::Error;

impl Connection {
    /// `IDENTIFY_SYSTEM`: the cluster's system identifier, current timeline and flush
    /// position.
    ///
    /// # Errors
    /// [`Error::Server`] when the server refuses (e.g. not a replication connection);
    /// [`Error::Protocol`] naming the column when the answer does not decode.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity, Error> {
        let rs = self.query_one(&commands::identify_system()).await?;
        SystemIdentity::from_result(&rs).map_err(|e| self.protocol(e))
    }

    /// `SHOW name`: a setting's current value as the server prints it.
    ///
    /// # Errors
    /// [`Error::Server`] for an unknown setting; [`Error::Protocol`] for a malformed answer.
    pub async fn show(&mut self, name: &str) -> Result<String, Error> {
        let sql = commands::show(name).map_err(|source| Error::Encode { source })?;
        let rs = self.query_one(&sql).await?;
        show_value(&rs).map_err(|e| self.protocol(e))
    }

    /// The server's WAL segment size, from `SHOW wal_segment_size` (`16MB`, `1GB`…).
    ///
    /// # Errors
    /// As [`Connection::show`], or [`Error::Protocol`] when the value is not a valid
    /// segment size.
    pub async fn wal_segment_size(&mut self) -> Result<WalSegSize, Error> {
        let text = self.show("wal_segment_size").await?;
        text.parse().map_err(|e| {
            self.protocol(ProtoError::invalid("SHOW wal_segment_size", format!("{e}")))
        })
    }

    /// `TIMELINE_HISTORY tli`: the history file of timeline `tli` (none exists for 1).
    ///
    /// # Errors
    /// [`Error::Server`] when the server has no such file; [`Error::Protocol`] for a
    /// malformed answer.
    pub async fn timeline_history(
        &mut self,
        tli: TimeLineId,
    ) -> Result<TimelineHistoryFile, Error> {
        let rs = self.query_one(&commands::timeline_history(tli)).await?;
        TimelineHistoryFile::from_result(&rs).map_err(|e| self.protocol(e))
    }

    /// `CREATE_REPLICATION_SLOT name [TEMPORARY] PHYSICAL [RESERVE_WAL]`, in the syntax of
    /// the server's version. With `reserve_wal` the slot holds WAL from now on, at once.
    ///
    /// # Errors
    /// [`Error::Server`] when the slot exists (`42710`), the name is invalid, or slots are
    /// exhausted; [`Error::Protocol`] for a malformed answer.
    pub async fn create_physical_slot(
        &mut self,
        name: &str,
        temporary: bool,
        reserve_wal: bool,
    ) -> Result<CreatedSlot, Error> {
        let sql =
            commands::create_physical_slot(name, temporary, reserve_wal, self.server_version_num)
                .map_err(|source| Error::Encode { source })?;
        let rs = self.query_one(&sql).await?;
        CreatedSlot::from_result(&rs).map_err(|e| self.protocol(e))
    }

    /// `READ_REPLICATION_SLOT name` (servers 15+): where a physical slot restarts, or
    /// `None` when there is no such slot.
    ///
    /// # Errors
    /// [`Error::Unsupported`] on a server before 15; [`Error::Server`] for a logical slot
    /// or other refusal; [`Error::Protocol`] for a malformed answer.
    pub async fn read_replication_slot(&mut self, name: &str) -> Result<Option<SlotInfo>, Error> {
        if self.server_version_num < PG15 {
            return Err(Error::Unsupported {
                command: "READ_REPLICATION_SLOT",
                server_version_num: self.server_version_num,
                min_version_num: PG15,
            });
        }
        let sql =
            commands::read_replication_slot(name).map_err(|source| Error::Encode { source })?;
        let rs = self.query_one(&sql).await?;
        SlotInfo::from_result(&rs).map_err(|e| self.protocol(e))
    }

    /// `DROP_REPLICATION_SLOT name [WAIT]`; with `wait`, waits for an active slot to be
    /// released instead of failing.
    ///
    /// # Errors
    /// [`Error::Server`] when the slot does not exist (`42704`) or is active without
    /// `wait` (`55006`).
    pub async fn drop_slot(&mut self, name: &str, wait: bool) -> Result<(), Error> {
        let sql = commands::drop_replication_slot(name, wait)
            .map_err(|source| Error::Encode { source })?;
        self.query(&sql).await.map(drop)
    }
}
