//! A packet format and a message codec of one's own, served on both
//! backends and called through the framework's client.
//!
//! ```text
//! cargo run --release --example custom_format
//! ```
//!
//! The format (`game.rs`) is the common game layout
//! `u16 len | u16 msg_id | u32 seq | u8 flags | payload`, little-endian; the
//! codec writes plain structs in a fixed little-endian layout. Neither is
//! walle's, and both reach only the public API.

#![allow(clippy::print_stdout)] // a command-line program: its output is the point

mod game;

use std::error::Error;

use game::{GameFormat, LOGIN, LeCodec, MOVE, Move, Position, game_router};
use walle::net::{Backend, Client, Server};
use walle::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    for backend in [Backend::evloop(), Backend::tcp()] {
        let name = backend.name();
        let server = Server::builder(game_router())
            .backend(backend.clone())
            .protocol(Protocol::new(GameFormat))
            .bind("127.0.0.1:0")?;
        let client = Client::builder(server.local_addr(), Router::new(LeCodec))
            .backend(backend.clone())
            .protocol(Protocol::new(GameFormat))
            .build()?;

        let greeting: String = client.call(LOGIN, &"ada".to_owned()).await?;
        println!("{name}: login -> {greeting:?}");
        for step in [Move { dx: 3, dy: -4 }, Move { dx: 10, dy: 10 }] {
            let at: Position = client.call(MOVE, &step).await?;
            println!("{name}: move {step:?} -> {at:?}");
        }
        let refused = client
            .call::<Move, Position>(MOVE, &Move { dx: 500, dy: 0 })
            .await;
        match refused {
            Err(error) => println!("{name}: move by 500 -> error: {error}"),
            Ok(at) => return Err(format!("a move out of bounds was taken: {at:?}").into()),
        }
        client.close();
        server.stop();
    }
    Ok(())
}
