//! `walle discover`: the nodes of a discovery target, and with `--watch`
//! each change as it happens.

use walle::discovery::{Change, Drivers, Node, State};

use crate::common::Failure;

/// The arguments of `walle discover`.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// The discovery target: `etcd://host:port/prefix`, `static://...`.
    pub target: String,
    /// After the table, print each change as a line until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
}

fn state(node: &Node) -> &'static str {
    match node.state {
        State::Online => "online",
        State::Offline => "offline",
    }
}

fn metadata(node: &Node) -> String {
    let pairs: Vec<String> = node.md.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

/// The nodes as a table: id, address, net, state, metadata.
pub fn table<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> String {
    let rows: Vec<[String; 5]> = nodes
        .into_iter()
        .map(|n| {
            [
                n.id.clone(),
                n.addr.clone(),
                if n.net.is_empty() {
                    "tcp".into()
                } else {
                    n.net.clone()
                },
                state(n).into(),
                metadata(n),
            ]
        })
        .collect();
    let head = ["ID", "ADDRESS", "NET", "STATE", "METADATA"];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out += cell;
            } else {
                out += &format!("{cell:<w$}  ");
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(head);
    for row in &rows {
        out.push('\n');
        out += &line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    out
}

fn change_line(change: &Change) -> String {
    match change {
        Change::Insert(n) => format!(
            "insert {} {} {} {} {}",
            n.id,
            n.addr,
            n.net,
            state(n),
            metadata(n)
        ),
        Change::Update(n) => format!(
            "update {} {} {} {} {}",
            n.id,
            n.addr,
            n.net,
            state(n),
            metadata(n)
        ),
        Change::Remove(id) => format!("remove {id}"),
    }
}

/// Prints the table, then (with `--watch`) the changes until Ctrl-C.
#[allow(clippy::print_stdout)] // the command's output
pub async fn run(args: &DiscoverArgs) -> Result<(), Failure> {
    let drivers = Drivers::new();
    let mut discovery = drivers
        .resolve(&args.target)
        .await
        .map_err(|e| Failure::Unreachable(format!("{}: {e}", args.target)))?;
    println!("{}", table(discovery.nodes().values()));
    if !args.watch {
        return Ok(());
    }
    loop {
        tokio::select! {
            change = discovery.next() => match change {
                Some(change) => println!("{}", change_line(&change)),
                None => return Err(Failure::Unreachable(format!("{}: the watch ended", args.target))),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
