//! What the protocol looks like on the wire.
//!
//! `cargo run -p stage-06-mapreduce --example frames`
//!
//! Encodes one of each message and prints the bytes, then shows what the
//! decoder says about some garbage.

use mapreduce::schedule::{TaskId, TaskKind};
use mapreduce::task::{MapTask, ReduceTask};
use mapreduce::wire::Message;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let messages = [
        Message::GetTask { worker: 4242 },
        Message::Map(MapTask {
            index: 3,
            file: "pg-grimm.txt".into(),
            n_reduce: 10,
        }),
        Message::Reduce(ReduceTask { index: 7, n_map: 8 }),
        Message::Done {
            task: TaskId {
                kind: TaskKind::Map,
                index: 3,
            },
            worker: 4242,
        },
        Message::Ack,
        Message::Exit,
    ];
    println!("len (u32 BE) | version tag fields...");
    for m in &messages {
        let frame = m.encode();
        println!("{:<11} | {}\n    {m:?}", hex(&frame[..4]), hex(&frame[4..]));
    }
    println!();
    for garbage in [
        &b"GET / HTTP/1.1"[..],
        &[1, 99],
        &[2, 1, 0, 0, 0, 1],
        &[1, 1, 0, 0],
    ] {
        println!("decode({}) -> {:?}", hex(garbage), Message::decode(garbage));
    }
}
