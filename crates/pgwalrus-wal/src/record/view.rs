//! [`RecordView`]: a record the decoder has fully checked, borrowed where it lies — in the
//! caller's input, in the decoder's buffer, or (for a record that crosses pages) in its
//! reassembly buffer — so that checking WAL needs no allocation per record.

use std::ops::Range;

use crate::decoder::DecodeError;
use crate::record::{Record, RecordHeader};
use crate::{Lsn, PgMajor};

/// A record as [`WalDecoder::next_checked`](crate::WalDecoder::next_checked) yields it:
/// everything [`WalDecoder::next`](crate::WalDecoder::next) checks has been checked (page
/// headers, record header, `xl_prev` chain, CRC-32C, block references), but block
/// references are not collected. [`to_record`](RecordView::to_record) builds the owned
/// [`Record`] `next` would have returned.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    /// Where the record starts (`ReadRecPtr`).
    pub lsn: Lsn,
    /// Where the next record starts (`EndRecPtr`), as [`Record::end`].
    pub end: Lsn,
    /// The record header.
    pub header: RecordHeader,
    /// As [`Record::aborted_record`].
    pub aborted_record: Option<Lsn>,
    /// The major the record was decoded as.
    pub major: PgMajor,
    pub(crate) raw: &'a [u8],
    pub(crate) main_data: Range<usize>,
}

impl<'a> RecordView<'a> {
    /// The record's bytes, header included (`xl_tot_len` of them).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The main data (`XLogRecGetData`).
    pub fn main_data(&self) -> &'a [u8] {
        self.raw.get(self.main_data.clone()).unwrap_or_default()
    }

    /// The owned, fully decoded record (block references collected): a copy of the bytes.
    ///
    /// # Errors
    /// None in practice: the bytes passed the same checks when the view was made. The
    /// [`DecodeError`] of [`Record::decode`] is passed on rather than assumed away.
    pub fn to_record(&self) -> Result<Record, DecodeError> {
        let mut record = Record::decode(self.major, self.lsn, self.raw.to_vec())?;
        record.end = self.end;
        record.aborted_record = self.aborted_record;
        Ok(record)
    }
}
