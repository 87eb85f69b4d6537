//! [`BorrowedFeed`]: decoding from the caller's bytes in place, for
//! [`WalDecoder::feed_borrowed`].

use super::WalDecoder;
use crate::DecodeError;
use crate::record::{Record, RecordView};

/// Bytes lent to a [`WalDecoder`] by [`WalDecoder::feed_borrowed`]: decode them with
/// [`next_checked`](BorrowedFeed::next_checked) or [`next`](BorrowedFeed::next). When it
/// is dropped, the bytes not yet decoded are copied into the decoder, which goes on as if
/// they had been given to [`WalDecoder::feed`]. (Forgetting it with [`std::mem::forget`]
/// loses them.)
#[derive(Debug)]
pub struct BorrowedFeed<'d, 'b> {
    pub(super) decoder: &'d mut WalDecoder,
    pub(super) bytes: &'b [u8],
}

impl BorrowedFeed<'_, '_> {
    /// As [`WalDecoder::next_checked`], over the decoder's own bytes, then these.
    ///
    /// # Errors
    /// As for [`WalDecoder::next`].
    pub fn next_checked(&mut self) -> Result<Option<RecordView<'_>>, DecodeError> {
        self.decoder.ext_len = self.bytes.len();
        if self.decoder.poll(self.bytes)? {
            Ok(Some(self.decoder.view(self.bytes)))
        } else {
            Ok(None)
        }
    }

    /// As [`WalDecoder::next`], over the decoder's own bytes, then these.
    ///
    /// # Errors
    /// As for [`WalDecoder::next`].
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record>, DecodeError> {
        match self.next_checked()? {
            Some(view) => view.to_record().map(Some),
            None => Ok(None),
        }
    }

    /// As [`WalDecoder::finish`]: these bytes are the last.
    pub fn finish(&mut self) {
        self.decoder.finish();
    }

    /// The decoder, for its accessors.
    pub fn decoder(&self) -> &WalDecoder {
        self.decoder
    }
}

impl Drop for BorrowedFeed<'_, '_> {
    fn drop(&mut self) {
        let d = &mut *self.decoder;
        if d.ext_pos < self.bytes.len() {
            d.absorb(self.bytes);
        }
        d.ext_len = 0;
        d.ext_pos = 0;
    }
}
