//! Frontline's synchronous callbacks (CRM, outgoing conversations, templates): requests arrive
//! on `<prefix>.callback.>` in the `frontline-resolvers` queue group, are answered by
//! [`answers::answer`] from the customer directory, `PROXY_ADDRESSES` and `TEMPLATES`, and the
//! `{"status","body"}` reply goes back to the ingress, which relays it. As for pre-events, only
//! inbox replies are answered and a request past its deadline is skipped.

use std::path::PathBuf;
use std::sync::Arc;

use async_nats::{Client, Message, Subscriber};
use frontline_runtime::telemetry;
use frontline_shared::subject::Subjects;
use frontline_shared::{CallbackReply, Envelope};
use futures::StreamExt;
use tracing::Instrument;

use crate::directory::CustomerDirectory;
use crate::metrics::ResolverMetrics;
use crate::pre::{continue_trace, deadline_passed, reply_subject};
use answers::{CallbackSettings, TemplateCategory, answer};

pub mod answers;

/// Where the message templates come from (`TEMPLATES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatesSource {
    /// `file:PATH`: a JSON array of template categories.
    File(PathBuf),
}

impl std::str::FromStr for TemplatesSource {
    type Err = String;

    fn from_str(value: &str) -> Result<TemplatesSource, String> {
        match value.split_once(':') {
            Some(("file", path)) if !path.is_empty() => Ok(TemplatesSource::File(path.into())),
            _ => Err(format!("TEMPLATES must be file:PATH, got {value:?}")),
        }
    }
}

impl TemplatesSource {
    /// Reads the template categories.
    ///
    /// # Errors
    /// When the file cannot be read or is not a JSON array of categories.
    pub fn load(&self) -> Result<Vec<TemplateCategory>, String> {
        let TemplatesSource::File(path) = self;
        let text =
            std::fs::read(path).map_err(|err| format!("TEMPLATES {}: {err}", path.display()))?;
        serde_json::from_slice(&text).map_err(|err| format!("TEMPLATES {}: {err}", path.display()))
    }
}

/// What answering a callback needs.
#[derive(Debug)]
pub struct Context {
    /// Subjects of this deployment.
    pub subjects: Subjects,
    /// The only reply subjects answered (see [`crate::pre::Context::reply_prefix`]).
    pub reply_prefix: String,
    /// The customer directory.
    pub directory: Arc<dyn CustomerDirectory>,
    /// Proxy addresses and templates.
    pub settings: CallbackSettings,
    /// Metrics.
    pub metrics: ResolverMetrics,
}

/// Answers requests from `subscriber` until it ends (after the client is drained).
pub async fn serve(client: Client, mut subscriber: Subscriber, context: Context) {
    while let Some(message) = subscriber.next().await {
        let span = tracing::info_span!(target: telemetry::REQUEST_SPANS, "callback", subject = %telemetry::cut(&message.subject), trace_id = tracing::field::Empty);
        continue_trace(&span, &message);
        handle(&client, message, &context).instrument(span).await;
    }
    tracing::info!("callback subscription ended");
}

async fn handle(client: &Client, message: Message, context: &Context) {
    let Some(reply_to) = reply_subject(&message, &context.reply_prefix, &context.metrics) else {
        return;
    };
    let Some((route, location)) = context.subjects.parse_callback(&message.subject) else {
        tracing::warn!(subject = %telemetry::cut(&message.subject), "not a callback subject; ignored");
        return;
    };
    if deadline_passed(&message) {
        tracing::warn!(
            route = route.as_str(),
            "callback past its deadline; skipped"
        );
        context.metrics.callback(route, location, "expired");
        return;
    }
    let reply = match Envelope::from_slice(&message.payload) {
        Ok(envelope) => answer(
            route,
            location,
            &envelope.params,
            context.directory.as_ref(),
            &context.settings,
        ),
        Err(err) => {
            tracing::warn!(cause = %err, "undecodable callback");
            CallbackReply::empty(500)
        }
    };
    context
        .metrics
        .callback(route, location, status_label(reply.status));
    if let Err(err) = client.publish(reply_to, reply.to_vec().into()).await {
        tracing::warn!(cause = %err, "sending the callback reply failed");
    }
}

/// The `status` label: the few statuses the answers use.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        403 => "403",
        404 => "404",
        422 => "422",
        _ => "500",
    }
}
