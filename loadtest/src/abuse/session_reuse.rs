//! Session reuse: one visitor, from one attacker address, comes back with its session
//! token on a new connection again and again, each time starting a chat and closing it
//! (close, start, close, start…): a hub whose limits are per connection lets it create
//! conversations, tickets and webhook posts without end. Bounded by a count and a time;
//! counts each step's answers and the chats it created.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    client::{answer, customer, start, Answer, Target},
    report::AttackReport,
};
use crate::wire::Out;

pub async fn run(target: &Target, max_cycles: usize, limit: Duration) -> AttackReport {
    let started = Instant::now();
    let local = target.addrs.attacker(0);
    let mut report = AttackReport {
        name: "session reuse".into(),
        ..AttackReport::default()
    };
    let session = match customer(target, local, None, None).await {
        Ok((ws, session)) => {
            ws.close().await;
            session
        }
        Err(kind) => {
            report.sent = "nothing: the first hello failed".into();
            report.answers.add(format!("hello: {kind}"));
            return report;
        }
    };
    let mut cycles = 0;
    let mut created: u64 = 0;
    while cycles < max_cycles && started.elapsed() < limit {
        cycles += 1;
        let mut ws = match customer(target, local, Some(&session), None).await {
            Ok((ws, _)) => ws,
            Err(kind) => {
                report.answers.add(format!("hello: {kind}"));
                continue;
            }
        };
        match start(&mut ws, "abuse-reuse", "again").await {
            Ok(conversation_id) => {
                created += 1;
                report.answers.add("start acked");
                let req = ws.req();
                let close = Out::Close {
                    req: &req,
                    conversation_id: &conversation_id,
                };
                let closed = match ws.send(&close).await {
                    Ok(()) => answer(&mut ws, Some(&req)).await,
                    Err(_) => Answer::Failed("send failed".into()),
                };
                report.answers.add(format!("close: {}", closed.kind()));
            }
            Err(kind) => report.answers.add(format!("start: {kind}")),
        }
        ws.drop_abruptly();
    }
    report.sent = format!(
        "one visitor from {local}: {cycles} × (reconnect with its session, `start`, `close`) within {:.0} s",
        limit.as_secs_f64()
    );
    report.notes.push(format!(
        "{created} conversations (and tickets) created by one visitor in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    report.visitor_chats = Some(created);
    report.seconds = started.elapsed().as_secs_f64();
    report
}
