//! The pure part of Frontline's callbacks: given the route, the `Location`, the parameters and
//! the directory, the answer (status and JSON body). No I/O, so every answer is unit-tested as
//! exact JSON. Bodies stay under Frontline's 64 KiB cap; a customer's `worker` never leaves.

use std::sync::Arc;

use frontline_shared::callback::{
    GET_CUSTOMER_DETAILS, GET_CUSTOMERS_LIST, GET_PROXY_ADDRESS, GET_TEMPLATES, MAX_ANSWER_BYTES,
};
use frontline_shared::envelope::Params;
use frontline_shared::{CallbackReply, CallbackRoute, Customer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::directory::CustomerDirectory;

/// The page size when Frontline sends none (or nonsense).
const DEFAULT_PAGE_SIZE: usize = 30;
/// The most customers one page holds, whatever `PageSize` asks.
const MAX_PAGE_SIZE: usize = 500;

/// The proxy address per channel type (`PROXY_ADDRESSES`, e.g.
/// `sms=+18005550100,whatsapp=whatsapp:+18005550100`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyAddresses(Vec<(String, String)>);

impl std::str::FromStr for ProxyAddresses {
    type Err = String;

    fn from_str(value: &str) -> Result<ProxyAddresses, String> {
        let mut pairs = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kind, address) = entry
                .split_once('=')
                .map(|(k, a)| (k.trim(), a.trim()))
                .filter(|(k, a)| !k.is_empty() && !a.is_empty())
                .ok_or_else(|| {
                    format!("PROXY_ADDRESSES entries are TYPE=ADDRESS, got {entry:?}")
                })?;
            pairs.push((kind.to_ascii_lowercase(), address.to_owned()));
        }
        Ok(ProxyAddresses(pairs))
    }
}

impl ProxyAddresses {
    /// The address for a channel type (any case).
    pub fn get(&self, channel_type: &str) -> Option<&str> {
        let wanted = channel_type.to_ascii_lowercase();
        self.0
            .iter()
            .find(|(kind, _)| *kind == wanted)
            .map(|(_, address)| address.as_str())
    }
}

/// One category of message templates (`TEMPLATES`, Frontline's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCategory {
    /// The category's name in the app.
    #[serde(rename = "display_name")]
    pub display_name: String,
    /// Its templates.
    #[serde(rename = "templates", default)]
    pub templates: Vec<Template>,
}

/// One message template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// The text, with `{{customer.display_name}}`, `{{customer.customer_id}}` and `{{worker}}`
    /// filled in when answered.
    #[serde(rename = "content")]
    pub content: String,
    /// Approved for WhatsApp (only approved ones may open a WhatsApp conversation).
    #[serde(rename = "whatsAppApproved", default)]
    pub whatsapp_approved: bool,
}

/// What the callback answers are computed from, besides the directory.
#[derive(Debug, Clone, Default)]
pub struct CallbackSettings {
    /// `PROXY_ADDRESSES`.
    pub proxy_addresses: ProxyAddresses,
    /// The categories of `TEMPLATES`.
    pub templates: Vec<TemplateCategory>,
}

/// The answer to one callback.
pub fn answer(
    route: CallbackRoute,
    location: &str,
    params: &Params,
    directory: &dyn CustomerDirectory,
    settings: &CallbackSettings,
) -> CallbackReply {
    match (route, location) {
        (CallbackRoute::Crm, GET_CUSTOMERS_LIST) => customers_list(params, directory),
        (CallbackRoute::Crm, GET_CUSTOMER_DETAILS) => customer_details(params, directory),
        (CallbackRoute::OutgoingConversation, GET_PROXY_ADDRESS) => {
            proxy_address(params, &settings.proxy_addresses)
        }
        (CallbackRoute::Templates, GET_TEMPLATES) => {
            templates(params, directory, &settings.templates)
        }
        // A Location unknown to the route it came on.
        _ => CallbackReply::empty(422),
    }
}

/// The customers `Worker` sees (theirs and everyone's), filtered by `Query`, after `Anchor`, at
/// most `PageSize`, cut short to fit 64 KiB.
fn customers_list(params: &Params, directory: &dyn CustomerDirectory) -> CallbackReply {
    let worker = params.get("Worker").unwrap_or("");
    let query = params
        .non_empty("Query")
        .map(|q| q.to_lowercase())
        .filter(|q| !q.trim().is_empty());
    let page_size = params
        .get("PageSize")
        .and_then(|size| size.trim().parse::<usize>().ok())
        .filter(|size| *size > 0)
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .min(MAX_PAGE_SIZE);
    let all = directory.all();
    let mut matching = all.iter().filter(|customer| {
        customer
            .worker
            .as_deref()
            .is_none_or(|owner| owner == worker)
            && query
                .as_ref()
                .is_none_or(|q| customer.display_name.to_lowercase().contains(q.as_str()))
    });
    // A page starts after its anchor; an anchor no longer in the list ends the paging.
    if let Some(anchor) = params.non_empty("Anchor")
        && !matching.by_ref().any(|c| c.customer_id == anchor)
    {
        return list_answer(Vec::new());
    }
    let envelope = list_answer(Vec::new())
        .body
        .map_or(0, |body| body.to_string().len());
    let mut used = envelope;
    let mut page = Vec::new();
    for customer in matching.take(page_size) {
        let entry = summary(customer);
        let size = entry.to_string().len() + 1;
        if used + size >= MAX_ANSWER_BYTES {
            break;
        }
        used += size;
        page.push(entry);
    }
    list_answer(page)
}

fn list_answer(customers: Vec<Value>) -> CallbackReply {
    CallbackReply::ok(json!({"objects": {"customers": customers, "searchable": true}}))
}

/// A customer in a list: id, name, avatar.
fn summary(customer: &Arc<Customer>) -> Value {
    let mut entry = json!({
        "customer_id": customer.customer_id,
        "display_name": customer.display_name,
    });
    if let Some(avatar) = &customer.avatar {
        entry["avatar"] = json!(avatar);
    }
    entry
}

/// The whole record of `CustomerId`, without its `worker`; 404 when unknown.
fn customer_details(params: &Params, directory: &dyn CustomerDirectory) -> CallbackReply {
    let Some(customer) = params.get("CustomerId").and_then(|id| directory.by_id(id)) else {
        return CallbackReply::empty(404);
    };
    let mut record = json!({
        "customer_id": customer.customer_id,
        "display_name": customer.display_name,
        "channels": customer.channels,
        "links": customer.links,
    });
    if let Some(avatar) = &customer.avatar {
        record["avatar"] = json!(avatar);
    }
    if let Some(details) = &customer.details {
        record["details"] = json!(details);
    }
    let answer = json!({"objects": {"customer": record}});
    if answer.to_string().len() >= MAX_ANSWER_BYTES {
        tracing::warn!(customer_id = %frontline_runtime::telemetry::cut(&customer.customer_id), "a customer record over 64 KiB cannot be sent to Frontline");
        return CallbackReply::empty(500);
    }
    CallbackReply::ok(answer)
}

/// The number to write from on `ChannelType`; 403 when none is configured.
fn proxy_address(params: &Params, proxies: &ProxyAddresses) -> CallbackReply {
    match params.get("ChannelType").and_then(|kind| proxies.get(kind)) {
        Some(address) => CallbackReply::ok(json!({"proxy_address": address})),
        None => CallbackReply::empty(403),
    }
}

/// The template categories with the customer's and worker's placeholders filled in; 404 for an
/// unknown customer. Templates past 64 KiB are left out.
fn templates(
    params: &Params,
    directory: &dyn CustomerDirectory,
    categories: &[TemplateCategory],
) -> CallbackReply {
    let Some(customer) = params.get("CustomerId").and_then(|id| directory.by_id(id)) else {
        return CallbackReply::empty(404);
    };
    let worker = params.get("Worker").unwrap_or("");
    let fill = |content: &str| {
        content
            .replace("{{customer.display_name}}", &customer.display_name)
            .replace("{{customer.customer_id}}", &customer.customer_id)
            .replace("{{worker}}", worker)
    };
    let mut used = 2;
    let mut answer = Vec::new();
    'categories: for category in categories {
        let mut filled = TemplateCategory {
            display_name: category.display_name.clone(),
            templates: Vec::new(),
        };
        used += json!(filled).to_string().len() + 1;
        for template in &category.templates {
            let template = Template {
                content: fill(&template.content),
                whatsapp_approved: template.whatsapp_approved,
            };
            let size = json!(template).to_string().len() + 1;
            if used + size >= MAX_ANSWER_BYTES {
                answer.push(filled);
                break 'categories;
            }
            used += size;
            filled.templates.push(template);
        }
        answer.push(filled);
    }
    CallbackReply::ok(json!(answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;

    fn directory() -> Directory {
        let customers = json!([
            {"customer_id": "1", "display_name": "Bobby Shaftoe", "avatar": "https://a/1.png",
             "channels": [{"type": "sms", "value": "+1"}], "worker": "alice@example.com",
             "links": [{"type": "Web", "value": "https://b", "display_name": "Site"}],
             "details": {"title": "Notes", "content": "VIP"}},
            {"customer_id": 2, "display_name": "Ada Lovelace", "channels": []},
            {"customer_id": "3", "display_name": "Grace Hopper", "avatar": "https://a/3.png",
             "channels": [], "worker": "bob@example.com"},
            {"customer_id": "4", "display_name": "Bobbie Gee", "channels": [], "worker": "alice@example.com"},
        ]);
        Directory::new(serde_json::from_value::<Vec<Customer>>(customers).unwrap())
    }

    fn settings() -> CallbackSettings {
        CallbackSettings {
            proxy_addresses: "sms=+18005550100, whatsapp=whatsapp:+18005550100".parse().unwrap(),
            templates: serde_json::from_value(json!([
                {"display_name": "Openers", "templates": [
                    {"content": "Hi {{customer.display_name}}, this is {{worker}}.", "whatsAppApproved": true},
                    {"content": "Your customer number is {{customer.customer_id}}."}
                ]}
            ]))
            .unwrap(),
        }
    }

    fn ask(route: CallbackRoute, location: &str, params: &[(&str, &str)]) -> CallbackReply {
        answer(
            route,
            location,
            &Params::from_pairs(params.iter().copied()),
            &directory(),
            &settings(),
        )
    }

    fn list(params: &[(&str, &str)]) -> Value {
        let reply = ask(CallbackRoute::Crm, GET_CUSTOMERS_LIST, params);
        assert_eq!(reply.status, 200);
        reply.body.unwrap()
    }

    #[test]
    fn a_worker_sees_their_customers_and_everyone_s() {
        assert_eq!(
            list(&[("Worker", "alice@example.com"), ("PageSize", "30")]),
            json!({"objects": {"customers": [
                {"customer_id": "1", "display_name": "Bobby Shaftoe", "avatar": "https://a/1.png"},
                {"customer_id": "2", "display_name": "Ada Lovelace"},
                {"customer_id": "4", "display_name": "Bobbie Gee"},
            ], "searchable": true}})
        );
        assert_eq!(
            list(&[("Worker", "bob@example.com")]),
            json!({"objects": {"customers": [
                {"customer_id": "2", "display_name": "Ada Lovelace"},
                {"customer_id": "3", "display_name": "Grace Hopper", "avatar": "https://a/3.png"},
            ], "searchable": true}})
        );
    }

    #[test]
    fn query_filters_by_name_without_case_and_pages_follow_the_anchor() {
        assert_eq!(
            list(&[("Worker", "alice@example.com"), ("Query", "BOBB")]),
            json!({"objects": {"customers": [
                {"customer_id": "1", "display_name": "Bobby Shaftoe", "avatar": "https://a/1.png"},
                {"customer_id": "4", "display_name": "Bobbie Gee"},
            ], "searchable": true}})
        );
        assert_eq!(
            list(&[
                ("Worker", "alice@example.com"),
                ("PageSize", "1"),
                ("Anchor", "1")
            ]),
            json!({"objects": {"customers": [
                {"customer_id": "2", "display_name": "Ada Lovelace"},
            ], "searchable": true}})
        );
        assert_eq!(
            list(&[
                ("Worker", "alice@example.com"),
                ("Query", "bobb"),
                ("Anchor", "1")
            ]),
            json!({"objects": {"customers": [
                {"customer_id": "4", "display_name": "Bobbie Gee"},
            ], "searchable": true}})
        );
        // An anchor that is not in the list (another worker's, or gone) ends the paging.
        assert_eq!(
            list(&[("Worker", "alice@example.com"), ("Anchor", "3")]),
            json!({"objects": {"customers": [], "searchable": true}})
        );
    }

    #[test]
    fn a_long_list_is_cut_to_fit_64_kib() {
        let many: Vec<Customer> = (0..5_000)
            .map(|i| {
                serde_json::from_value(json!({"customer_id": format!("c{i}"),
                    "display_name": format!("Customer number {i} with a long name"),
                    "avatar": format!("https://avatars.example.com/customers/{i}.png"), "channels": []}))
                .unwrap()
            })
            .collect();
        let directory = Directory::new(many);
        let reply = answer(
            CallbackRoute::Crm,
            GET_CUSTOMERS_LIST,
            &Params::from_pairs([("Worker", "w"), ("PageSize", "500")]),
            &directory,
            &settings(),
        );
        let body = reply.body.unwrap();
        let size = body.to_string().len();
        let count = body["objects"]["customers"].as_array().unwrap().len();
        assert!(size < MAX_ANSWER_BYTES, "{size} bytes");
        assert!(count > 100 && count < 500, "{count} customers");
    }

    #[test]
    fn details_are_the_whole_record_without_the_worker() {
        let reply = ask(
            CallbackRoute::Crm,
            GET_CUSTOMER_DETAILS,
            &[("CustomerId", "1")],
        );
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.body.unwrap(),
            json!({"objects": {"customer": {
                "customer_id": "1", "display_name": "Bobby Shaftoe", "avatar": "https://a/1.png",
                "channels": [{"type": "sms", "value": "+1"}],
                "links": [{"type": "Web", "value": "https://b", "display_name": "Site"}],
                "details": {"title": "Notes", "content": "VIP"},
            }}})
        );
        assert_eq!(
            ask(
                CallbackRoute::Crm,
                GET_CUSTOMER_DETAILS,
                &[("CustomerId", "99")]
            ),
            CallbackReply::empty(404)
        );
    }

    #[test]
    fn the_proxy_address_follows_the_channel_type() {
        let ask_proxy = |kind| {
            ask(
                CallbackRoute::OutgoingConversation,
                GET_PROXY_ADDRESS,
                &[
                    ("CustomerId", "1"),
                    ("ChannelType", kind),
                    ("ChannelValue", "+1"),
                ],
            )
        };
        assert_eq!(
            ask_proxy("sms"),
            CallbackReply::ok(json!({"proxy_address": "+18005550100"}))
        );
        assert_eq!(
            ask_proxy("WhatsApp"),
            CallbackReply::ok(json!({"proxy_address": "whatsapp:+18005550100"}))
        );
        assert_eq!(ask_proxy("messenger"), CallbackReply::empty(403));
    }

    #[test]
    fn templates_have_their_placeholders_filled() {
        let reply = ask(
            CallbackRoute::Templates,
            GET_TEMPLATES,
            &[
                ("CustomerId", "1"),
                ("Worker", "alice@example.com"),
                ("ConversationSid", "CH1"),
            ],
        );
        assert_eq!(
            reply,
            CallbackReply::ok(json!([{"display_name": "Openers", "templates": [
                {"content": "Hi Bobby Shaftoe, this is alice@example.com.", "whatsAppApproved": true},
                {"content": "Your customer number is 1.", "whatsAppApproved": false},
            ]}]))
        );
        assert_eq!(
            ask(
                CallbackRoute::Templates,
                GET_TEMPLATES,
                &[("CustomerId", "99")]
            ),
            CallbackReply::empty(404)
        );
    }

    #[test]
    fn an_unknown_location_or_the_wrong_route_is_422() {
        assert_eq!(
            ask(CallbackRoute::Crm, "GetSomethingElse", &[]),
            CallbackReply::empty(422)
        );
        assert_eq!(
            ask(CallbackRoute::Crm, GET_PROXY_ADDRESS, &[]),
            CallbackReply::empty(422)
        );
        assert_eq!(
            ask(CallbackRoute::Templates, GET_CUSTOMERS_LIST, &[]),
            CallbackReply::empty(422)
        );
        assert_eq!(
            ask(CallbackRoute::OutgoingConversation, "_", &[]),
            CallbackReply::empty(422)
        );
    }

    #[test]
    fn proxy_addresses_parse() {
        assert!("sms".parse::<ProxyAddresses>().is_err());
        assert!("=+1".parse::<ProxyAddresses>().is_err());
        assert_eq!(
            "".parse::<ProxyAddresses>().unwrap(),
            ProxyAddresses::default()
        );
    }
}
