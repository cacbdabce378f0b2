//! `resolver twilio-setup`: reads Twilio's Conversations webhook configuration (global, or a
//! service's with `--service`), shows what it is and what it should be, and with `--apply`
//! POSTs it only when something differs. Filters already set in Twilio are kept.

use std::collections::BTreeSet;

use crate::twilio::{TwilioClient, WebhookConfiguration};

/// The events Frontline needs.
pub const NEEDED_FILTERS: [&str; 2] = ["onConversationAdd", "onParticipantAdded"];

/// The webhook path on the ingress.
pub const WEBHOOK_PATH: &str = "/webhooks/conversations";

/// What the configuration should be: both URLs at `public_url`'s webhook, the current filters
/// plus Frontline's and `extra`, `method`, and `Target=webhook` for the global configuration.
pub fn wanted(
    current: &WebhookConfiguration,
    public_url: &str,
    extra: &[String],
    method: &str,
    global: bool,
) -> WebhookConfiguration {
    let url = format!("{public_url}{WEBHOOK_PATH}");
    let filters: BTreeSet<String> = current
        .filters
        .iter()
        .cloned()
        .chain(NEEDED_FILTERS.iter().map(|f| (*f).to_owned()))
        .chain(extra.iter().cloned())
        .collect();
    WebhookConfiguration {
        pre_webhook_url: Some(url.clone()),
        post_webhook_url: Some(url),
        filters: filters.into_iter().collect(),
        method: Some(method.to_ascii_uppercase()),
        target: global.then(|| "webhook".to_owned()),
    }
}

/// Whether `current` already is `wanted` (filters compared as sets, the method without case).
pub fn in_line(current: &WebhookConfiguration, wanted: &WebhookConfiguration) -> bool {
    let set = |filters: &[String]| filters.iter().cloned().collect::<BTreeSet<_>>();
    current.pre_webhook_url == wanted.pre_webhook_url
        && current.post_webhook_url == wanted.post_webhook_url
        && set(&current.filters) == set(&wanted.filters)
        && current.method.as_deref().map(str::to_ascii_uppercase) == wanted.method
        && (wanted.target.is_none() || current.target == wanted.target)
}

/// The fields of `wanted` that differ from `current` (the others left out, so they are not sent).
pub fn changes(
    current: &WebhookConfiguration,
    wanted: &WebhookConfiguration,
) -> WebhookConfiguration {
    let differs = |now: &Option<String>, want: &Option<String>| match (now, want) {
        (_, None) => None,
        (Some(now), Some(want)) if now.eq_ignore_ascii_case(want) => None,
        (_, Some(want)) => Some(want.clone()),
    };
    let same_filters = current.filters.iter().collect::<BTreeSet<_>>()
        == wanted.filters.iter().collect::<BTreeSet<_>>();
    WebhookConfiguration {
        pre_webhook_url: differs(&current.pre_webhook_url, &wanted.pre_webhook_url),
        post_webhook_url: differs(&current.post_webhook_url, &wanted.post_webhook_url),
        filters: if same_filters {
            Vec::new()
        } else {
            wanted.filters.clone()
        },
        method: differs(&current.method, &wanted.method),
        target: differs(&current.target, &wanted.target),
    }
}

/// The two configurations side by side, a line per field, marking the differences.
pub fn side_by_side(current: &WebhookConfiguration, wanted: &WebhookConfiguration) -> String {
    let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "(none)".into());
    let rows = [
        (
            "PreWebhookUrl",
            show(&current.pre_webhook_url),
            show(&wanted.pre_webhook_url),
        ),
        (
            "PostWebhookUrl",
            show(&current.post_webhook_url),
            show(&wanted.post_webhook_url),
        ),
        (
            "Filters",
            current.filters.join(","),
            wanted.filters.join(","),
        ),
        ("Method", show(&current.method), show(&wanted.method)),
        ("Target", show(&current.target), show(&wanted.target)),
    ];
    let mut out = format!("  {:<16} {:<56} {}\n", "field", "in Twilio now", "wanted");
    for (field, now, want) in rows {
        if field == "Target" && wanted.target.is_none() {
            continue;
        }
        let same = if field == "Filters" {
            current.filters.iter().collect::<BTreeSet<_>>()
                == wanted.filters.iter().collect::<BTreeSet<_>>()
        } else {
            now.eq_ignore_ascii_case(&want)
        };
        let mark = if same { ' ' } else { '*' };
        out.push_str(&format!("{mark} {field:<16} {now:<56} {want}\n"));
    }
    out
}

/// The four Frontline callback URLs for the Frontline console.
pub fn callback_urls(public_url: &str) -> String {
    format!(
        "Frontline console (Frontline > Manage > Callbacks, and Routing):\n  \
         CRM Callback URL:                    {public_url}/callbacks/crm\n  \
         Outgoing Conversations Callback URL: {public_url}/callbacks/outgoing-conversation\n  \
         Templates Callback URL:              {public_url}/callbacks/templates\n  \
         Custom routing Callback URL:         {public_url}/callbacks/routing\n"
    )
}

/// What `twilio-setup` ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupOutcome {
    /// Twilio is in line (already, or after `--apply`).
    InLine,
    /// Twilio differs and `--apply` was not given.
    WouldChange,
}

/// Plans, and with `apply` changes, one configuration; prints what it does.
///
/// # Errors
/// A one-line reason when Twilio refuses (401, 404 for a wrong service, 5xx) or stays different.
pub async fn run(
    twilio: &TwilioClient,
    service: Option<&str>,
    public_url: &str,
    extra: &[String],
    method: &str,
    apply: bool,
) -> Result<SetupOutcome, String> {
    let scope = service.map_or_else(|| "global".to_owned(), |sid| format!("service {sid}"));
    let current = twilio
        .webhook_configuration(service)
        .await
        .map_err(|err| format!("reading the {scope} webhook configuration: {err}"))?;
    let wanted = wanted(&current, public_url, extra, method, service.is_none());
    println!("Conversations webhook configuration ({scope}):");
    print!("{}", side_by_side(&current, &wanted));
    if in_line(&current, &wanted) {
        println!("Twilio is in line: nothing to change.");
        return Ok(SetupOutcome::InLine);
    }
    if !apply {
        println!("Twilio differs (lines marked *): run again with --apply to change it.");
        return Ok(SetupOutcome::WouldChange);
    }
    let now = twilio
        .set_webhook_configuration(service, &changes(&current, &wanted))
        .await
        .map_err(|err| format!("changing the {scope} webhook configuration: {err}"))?;
    if in_line(&now, &wanted) {
        println!("Changed: Twilio is in line.");
        Ok(SetupOutcome::InLine)
    } else {
        Err(format!(
            "Twilio accepted the change but holds something else:\n{}",
            side_by_side(&now, &wanted)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configuration(url: Option<&str>, filters: &[&str], method: &str) -> WebhookConfiguration {
        WebhookConfiguration {
            pre_webhook_url: url.map(str::to_owned),
            post_webhook_url: url.map(str::to_owned),
            filters: filters.iter().map(|f| (*f).to_owned()).collect(),
            method: Some(method.to_owned()),
            target: Some("webhook".to_owned()),
        }
    }

    #[test]
    fn the_wanted_configuration_keeps_existing_filters() {
        let current = configuration(None, &["onMessageAdded"], "GET");
        let wanted = wanted(
            &current,
            "https://h.example",
            &["onUserAdded".into()],
            "post",
            true,
        );
        assert_eq!(
            wanted,
            WebhookConfiguration {
                pre_webhook_url: Some("https://h.example/webhooks/conversations".into()),
                post_webhook_url: Some("https://h.example/webhooks/conversations".into()),
                filters: vec![
                    "onConversationAdd".into(),
                    "onMessageAdded".into(),
                    "onParticipantAdded".into(),
                    "onUserAdded".into()
                ],
                method: Some("POST".into()),
                target: Some("webhook".into()),
            }
        );
        assert!(!in_line(&current, &wanted));
        let done = configuration(
            Some("https://h.example/webhooks/conversations"),
            &[
                "onUserAdded",
                "onParticipantAdded",
                "onMessageAdded",
                "onConversationAdd",
            ],
            "post",
        );
        assert!(in_line(&done, &wanted));
        // Only what differs is sent.
        let mut almost = done.clone();
        almost.filters.pop();
        let sent = changes(&almost, &wanted);
        assert_eq!(sent.pre_webhook_url, None);
        assert_eq!(sent.method, None);
        assert_eq!(sent.filters.len(), 4);
        assert_eq!(changes(&done, &wanted), WebhookConfiguration::default());
    }
}
