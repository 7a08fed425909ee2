//! Archive: the payload archive stage. When the deciding rule says `archive <duration>` (or the deployment
//! archives every request, `ARCHIVE`), the request body is kept with the trace, the answer as the client got it
//! joins it when the row is complete, and both are redacted and written to the [`ArchiveStore`] after the
//! response (crate::archive has the redaction, the key and the document). `GET /admin/logs/{id}/payload` reads
//! a request's document back.

use std::sync::Arc;

use super::plan::AttemptPlan;
use super::record::Trace;
use super::request::ApiCall;
use super::{Gateway, Reply};
use crate::archive::{self, Redactor};
use crate::error::ApiError;
use crate::log::LogRecord;
use crate::ports::{ArchiveStore, Host};
use crate::providers::Providers;

impl<H: Host> Gateway<H> {
    /// Notes in the trace that this request is archived, and for how long: the rule's `archive`, else the
    /// deployment's `ARCHIVE`. Costs a copy of the request body, only then.
    pub(super) fn plan_archive(
        &self,
        (call, plan, providers): (&ApiCall, &AttemptPlan<'_>, &Arc<Providers>),
        trace: &mut Trace,
    ) {
        if let Some(ms) = plan.options.archive_ms.or(self.config.archive.all_ms) {
            let request = serde_json::Value::Object(call.body().clone());
            trace.archive_planned(ms, request, providers.clone());
        }
    }

    /// `GET /admin/logs/{id}/payload`: the archived document of a request (admitted by the caller).
    pub(super) async fn archived_payload(&self, id: &str) -> Result<Reply, ApiError> {
        let read =
            |e: crate::error::StoreError| ApiError::internal(format!("payload archive: {e}"));
        // The request's row, as `/admin/logs/{id}` reads it: its `archive` column names the document.
        let (sql, params) = crate::logs::detail_sql(id);
        let rows = self.host.usage_rows(&sql, params).await.map_err(read)?;
        let Some(row) = crate::logs::render_detail(rows) else {
            return Err(ApiError::not_found(format!("no request `{id}` in the log")));
        };
        let key = match row["archive"].as_str() {
            Some(k) if archive::valid_key(k) => k.to_owned(),
            _ => {
                return Err(ApiError::not_found(format!(
                    "request `{id}` was not archived"
                )))
            }
        };
        match self.host.archived(&key).await.map_err(read)? {
            Some(doc) => Ok(Reply::local(doc)),
            None => Err(ApiError::not_found(format!(
                "the payload of request `{id}` is no longer in the archive (kept until {})",
                key.split('/').next().unwrap_or_default()
            ))),
        }
    }
}

/// Writes the bodies a complete row carries to the archive (after the response), and records the key in the
/// row; a failed write leaves the row saying it was not archived.
pub(super) async fn store<H: ArchiveStore>(host: &H, row: &mut LogRecord, redactor: &Redactor) {
    let Some(pending) = row.archive_pending.take() else {
        return;
    };
    let (key, doc) = archive::document(row, pending, redactor);
    if host.archive(&key, doc).await.is_ok() {
        row.archive = Some(key);
    }
}
