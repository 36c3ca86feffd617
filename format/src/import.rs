//! Sealing an existing plain asciicast recording into a `.cast.zst`.

use std::io::BufRead;

use crate::cast::RecordingMeta;
use crate::plain::{CastError, CastReader};
use crate::seal::EndReason;
use crate::sign::SecretKey;
use crate::writer::{ChainWriter, DurableWrite, SealSummary, WriteError, WriterOptions};

/// Import failures.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not a usable asciicast file.
    #[error("{0}")]
    Cast(#[from] CastError),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Reads a plain asciicast file and writes it, with its original times and
/// header attributes, as a sealed recording (end reason `imported`).
pub fn import<R: BufRead, W: DurableWrite>(
    input: R,
    out: W,
    key: Option<SecretKey>,
) -> Result<SealSummary, ImportError> {
    let mut reader = CastReader::new(input)?;
    let mut header = reader.header().clone();
    // An imported file's own termtrail block (if it was an export of one)
    // describes another recording; keep its session ids, not its id.
    let previous = header.termtrail.take().unwrap_or_default();
    header.termtrail = Some(RecordingMeta {
        source: Some("import".into()),
        session: previous.session,
        shell: previous.shell,
        principal: previous.principal,
        host: previous.host,
        ..RecordingMeta::default()
    });
    let mut w = ChainWriter::new(out, header, WriterOptions::default(), key)?;
    while let Some(e) = reader.next_event()? {
        w.push(&e)?;
    }
    Ok(w.seal(EndReason::Imported)?)
}
