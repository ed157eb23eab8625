//! `events` (and `system events`): `GET /events?since=&until=&filters=`
//! (times resolved by the CLI as docker's `GetTimestamp` does, filters in
//! the old `{"key":{"value":true}}` form), each event printed as docker's
//! `prettyPrintEvent` line or through `--format` on an `events.Message`.

use std::collections::BTreeMap;

use chrono::{DateTime, Local, TimeZone, Utc};
use clap::Args;
use serde::Deserialize;

use super::logs::get_timestamp;
use super::{filters_json, out, parse_filter, CmdResult, Ctx, StatusError};
use crate::client::{JsonStream, Query};
use crate::format::template::{Template, Value};

/// `berth events`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Get real time events from the server",
    override_usage = "berth events [OPTIONS]"
)]
pub(crate) struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long, value_name = "string", verbatim_doc_comment)]
    pub(crate) format: Option<String>,
    /// Show all events created since timestamp
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) since: String,
    /// Stream events until this timestamp
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) until: String,
}

/// `Actor` of an event.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct Actor {
    #[serde(rename = "ID")]
    pub(crate) id: String,
    #[serde(rename = "Attributes")]
    pub(crate) attributes: Option<BTreeMap<String, String>>,
}

/// One event (docker's `events.Message`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct Message {
    pub(crate) status: String,
    pub(crate) id: String,
    pub(crate) from: String,
    #[serde(rename = "Type")]
    pub(crate) kind: String,
    #[serde(rename = "Action")]
    pub(crate) action: String,
    #[serde(rename = "Actor")]
    pub(crate) actor: Actor,
    pub(crate) scope: String,
    pub(crate) time: i64,
    #[serde(rename = "timeNano")]
    pub(crate) time_nano: i64,
}

/// An event as template data: Go field names for `{{.Actor.ID}}`, the
/// JSON names (empty `status`/`id`/`from`/`scope`, zero times left out)
/// for `{{json .}}`.
pub(crate) fn message_value(m: &Message) -> Value {
    let attributes = Value::go_map(m.actor.attributes.as_ref());
    let attributes_json = match &m.actor.attributes {
        Some(a) => Value::object(a.iter().map(|(k, v)| (k.clone(), Value::str(v.as_str())))),
        None => Value::Null,
    };
    let id = Value::str(m.actor.id.as_str());
    let actor = Value::go_struct(
        "events.Actor",
        [("ID", id.clone()), ("Attributes", attributes)],
        Value::object([("ID", id), ("Attributes", attributes_json)]),
    );
    let mut json = Vec::new();
    for (key, v) in [("status", &m.status), ("id", &m.id), ("from", &m.from)] {
        if !v.is_empty() {
            json.push((key, Value::str(v.as_str())));
        }
    }
    json.push(("Type", Value::str(m.kind.as_str())));
    json.push(("Action", Value::str(m.action.as_str())));
    json.push(("Actor", actor.clone()));
    if !m.scope.is_empty() {
        json.push(("scope", Value::str(m.scope.as_str())));
    }
    if m.time != 0 {
        json.push(("time", Value::int(m.time)));
    }
    if m.time_nano != 0 {
        json.push(("timeNano", Value::int(m.time_nano)));
    }
    Value::go_struct(
        "*events.Message",
        [
            ("Status", Value::str(m.status.as_str())),
            ("ID", Value::str(m.id.as_str())),
            ("From", Value::str(m.from.as_str())),
            ("Type", Value::str(m.kind.as_str())),
            ("Action", Value::str(m.action.as_str())),
            ("Actor", actor),
            ("Scope", Value::str(m.scope.as_str())),
            ("Time", Value::int(m.time)),
            ("TimeNano", Value::int(m.time_nano)),
        ],
        Value::object(json),
    )
}

/// Go's `time.Format("2006-01-02T15:04:05.000000000Z07:00")` of a Unix time
/// in nanoseconds, in the zone `tz` (docker uses the local one).
pub(crate) fn format_time<Tz: TimeZone>(nanos: i64, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    let t = DateTime::<Utc>::from_timestamp(secs, sub)
        .unwrap_or_default()
        .with_timezone(tz);
    let zone = t.format("%:z").to_string();
    let zone = if zone == "+00:00" {
        "Z".to_string()
    } else {
        zone
    };
    format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.9f"))
}

/// docker's `prettyPrintEvent`: time, type, action, actor ID and the
/// actor's attributes sorted by key.
pub(crate) fn pretty<Tz: TimeZone>(m: &Message, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut line = String::new();
    if m.time_nano != 0 {
        line.push_str(&format_time(m.time_nano, tz));
        line.push(' ');
    } else if m.time != 0 {
        line.push_str(&format_time(m.time.saturating_mul(1_000_000_000), tz));
        line.push(' ');
    }
    line.push_str(&format!("{} {} {}", m.kind, m.action, m.actor.id));
    if let Some(attrs) = m.actor.attributes.as_ref().filter(|a| !a.is_empty()) {
        let list: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", list.join(", ")));
    }
    line.push('\n');
    line
}

/// docker's `makeTemplate`: none for the default output, `json` meaning
/// `{{json .}}`; checked on an empty event.
pub(crate) fn make_template(format: Option<&str>) -> Result<Option<Template>, StatusError> {
    let bad = |e: String| StatusError::new(64, format!("Error parsing format: {e}"));
    let source = match format.unwrap_or("") {
        "" => return Ok(None),
        "json" => "{{json .}}",
        other => other,
    };
    let t = Template::parse(source).map_err(|e| bad(e.to_string()))?;
    t.execute(&message_value(&Message::default()))
        .map_err(|e| bad(e.to_string()))?;
    Ok(Some(t))
}

/// The query of `GET /events`.
pub(crate) fn events_query(args: &EventsArgs, now: DateTime<Utc>) -> Result<Query, String> {
    let time = |v: &str| {
        if v.is_empty() {
            Ok(String::new())
        } else {
            get_timestamp(v, now)
        }
    };
    Ok(Query::new()
        .add_nonempty("since", &time(&args.since)?)
        .add_nonempty("until", &time(&args.until)?)
        .add_if(
            !args.filter.is_empty(),
            "filters",
            filters_json(&args.filter),
        ))
}

/// `berth events`.
pub(crate) async fn events(ctx: &Ctx, args: &EventsArgs) -> CmdResult {
    let tmpl = make_template(args.format.as_deref())?;
    let query = events_query(args, Utc::now()).map_err(anyhow::Error::msg)?;
    let resp = ctx.client.get_stream("/events", &query).await?;
    let mut stream = JsonStream::new(resp);
    while let Some(m) = stream.next::<Message>().await {
        let m = m?;
        match &tmpl {
            None => out(&pretty(&m, &Local))?,
            Some(t) => match t.execute(&message_value(&m)) {
                Ok(text) => out(&(text + "\n"))?,
                Err(e) => {
                    out("\n")?;
                    return Err(e.into());
                }
            },
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    const CREATE: &str = r#"{"status":"create","id":"4f1a","from":"busybox","Type":"container","Action":"create","Actor":{"ID":"4f1a","Attributes":{"name":"flow-d","image":"busybox"}},"scope":"local","time":1795805614,"timeNano":1795805614741972558}"#;
    const VOLUME: &str = r#"{"Type":"volume","Action":"create","Actor":{"ID":"flow-v","Attributes":{"driver":"local"}},"scope":"local","time":1795805615,"timeNano":1795805615000000001}"#;

    fn msg(s: &str) -> Message {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn lines_like_docker() {
        assert_eq!(
            pretty(&msg(CREATE), &Utc),
            "2026-11-27T18:53:34.741972558Z container create 4f1a (image=busybox, name=flow-d)\n"
        );
        let paris = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            pretty(&msg(VOLUME), &paris),
            "2026-11-27T19:53:35.000000001+01:00 volume create flow-v (driver=local)\n"
        );
        let old =
            msg(r#"{"Type":"image","Action":"tag","Actor":{"ID":"sha256:1"},"time":1795805615}"#);
        assert_eq!(
            pretty(&old, &Utc),
            "2026-11-27T18:53:35.000000000Z image tag sha256:1\n"
        );
    }

    #[test]
    fn templates_and_json_like_docker() {
        let t = make_template(Some("json")).unwrap().unwrap();
        assert_eq!(
            t.execute(&message_value(&msg(CREATE))).unwrap(),
            r#"{"status":"create","id":"4f1a","from":"busybox","Type":"container","Action":"create","Actor":{"ID":"4f1a","Attributes":{"image":"busybox","name":"flow-d"}},"scope":"local","time":1795805614,"timeNano":1795805614741972558}"#
        );
        assert_eq!(
            t.execute(&message_value(&msg(VOLUME))).unwrap(),
            r#"{"Type":"volume","Action":"create","Actor":{"ID":"flow-v","Attributes":{"driver":"local"}},"scope":"local","time":1795805615,"timeNano":1795805615000000001}"#
        );
        let t = make_template(Some(
            "{{.Type}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Status}} {{.TimeNano}} {{.Time}} {{.From}} {{.Scope}} {{.Action}}",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            t.execute(&message_value(&msg(CREATE))).unwrap(),
            "container 4f1a flow-d create 1795805614741972558 1795805614 busybox local create"
        );
        // docker: a missing attribute is Go's "<no value>", an absent
        // status an empty string.
        assert_eq!(
            t.execute(&message_value(&msg(VOLUME))).unwrap(),
            "volume flow-v <no value>  1795805615000000001 1795805615  local create"
        );
        let e = make_template(Some("{{.Nope}}")).unwrap_err();
        assert_eq!(e.code, 64);
        assert_eq!(
            e.message,
            "Error parsing format: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *events.Message"
        );
        assert!(make_template(None).unwrap().is_none());
    }

    #[test]
    fn queries_like_docker() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T18:53:34Z")
            .unwrap()
            .with_timezone(&Utc);
        let args = EventsArgs {
            filter: vec![
                ("type".into(), "container".into()),
                ("event".into(), "create".into()),
            ],
            format: None,
            since: "1m".into(),
            until: "0s".into(),
        };
        let n = now.timestamp();
        assert_eq!(
            events_query(&args, now).unwrap().encode(),
            format!(
                "filters=%7B%22event%22%3A%7B%22create%22%3Atrue%7D%2C%22type%22%3A%7B%22container%22%3Atrue%7D%7D&since={}&until={n}",
                n - 60
            )
        );
        let bad = EventsArgs {
            since: "junk".into(),
            ..args
        };
        assert!(events_query(&bad, now).is_err());
    }
}
