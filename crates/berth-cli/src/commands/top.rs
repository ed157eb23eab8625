//! `top`: `GET /containers/{name}/top[?ps_args=…]`, the daemon's `Titles`
//! and `Processes` printed through Go's tabwriter as docker does (minimum
//! width 20, padding 3).

use clap::Args;
use serde::Deserialize;

use super::{out, requires_min, CmdResult, Ctx};
use crate::client::Query;
use crate::format::table::tabwrite;

/// `berth top`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Display the running processes of a container",
    override_usage = "berth top CONTAINER [ps OPTIONS]"
)]
pub(crate) struct TopArgs {
    /// CONTAINER [ps OPTIONS]
    #[arg(value_name = "CONTAINER", trailing_var_arg = true)]
    pub(crate) args: Vec<String>,
}

/// Body of `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TopResponse {
    pub(crate) titles: Vec<String>,
    pub(crate) processes: Vec<Vec<String>>,
}

/// The `ps_args` query: the ps options joined by spaces, absent when none.
pub(crate) fn top_query(ps_args: &[String]) -> Query {
    Query::new().add_if(!ps_args.is_empty(), "ps_args", ps_args.join(" "))
}

/// docker's table: titles then one line per process, tab-separated cells
/// aligned by `tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)`.
pub(crate) fn top_table(top: &TopResponse) -> String {
    let mut text = top.titles.join("\t");
    text.push('\n');
    for p in &top.processes {
        text.push_str(&p.join("\t"));
        text.push('\n');
    }
    tabwrite(&text, 20, 3)
}

/// `berth top CONTAINER [ps OPTIONS]`.
pub(crate) async fn top(ctx: &Ctx, args: &TopArgs, path: &str) -> CmdResult {
    requires_min(path, "CONTAINER [ps OPTIONS]", args.args.len(), 1)?;
    let name = &args.args[0];
    let top: TopResponse = ctx
        .client
        .get_json(
            &format!("/containers/{name}/top"),
            &top_query(&args.args[1..]),
        )
        .await?;
    out(&top_table(&top))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_docker() {
        let top: TopResponse = serde_json::from_str(
            r#"{"Titles":["UID","PID","PPID","C","STIME","TTY","TIME","CMD"],
                "Processes":[["root","12345","12320","0","18:53","?","00:00:00","sh -c while true; do sleep 1; done"],
                             ["root","12400","12345","0","18:53","?","00:00:00","sleep 1"]]}"#,
        )
        .unwrap();
        // docker top's output against the same answer, byte for byte.
        let want = "\
UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD
root                12345               12320               0                   18:53               ?                   00:00:00            sh -c while true; do sleep 1; done
root                12400               12345               0                   18:53               ?                   00:00:00            sleep 1
";
        assert_eq!(top_table(&top), want);
        let wide = TopResponse {
            titles: vec!["PID".into(), "COMMAND".into()],
            processes: vec![vec!["1".into(), "a-command-line-longer-than-twenty".into()]],
        };
        assert_eq!(
            top_table(&wide),
            "PID                 COMMAND\n1                   a-command-line-longer-than-twenty\n"
        );
        let wide_first = TopResponse {
            titles: vec!["COMMAND-WITH-A-LONG-TITLE".into(), "PID".into()],
            processes: vec![vec!["x".into(), "1".into()]],
        };
        assert_eq!(
            top_table(&wide_first),
            "COMMAND-WITH-A-LONG-TITLE   PID\nx                           1\n"
        );
    }

    #[test]
    fn ps_args_query() {
        assert_eq!(top_query(&[]).encode(), "");
        assert_eq!(
            top_query(&["-o".into(), "pid,comm".into(), "aux".into()]).encode(),
            "ps_args=-o+pid%2Ccomm+aux"
        );
    }
}
