//! The invariants, checked on every schedule against the server model's record.

use std::collections::HashMap;

use super::client::{Log, Outcome, ReqSpec};
use super::world::Report;

/// Every broken invariant, described.
pub(crate) fn check(
    requests: &[ReqSpec],
    log: &Log,
    report: &Report,
    liveness: bool,
) -> Vec<String> {
    let mut broken: Vec<String> = report.violations.clone();
    broken.extend(log.violations.iter().cloned());
    let mut count: HashMap<(usize, usize), usize> = HashMap::new();
    for (round, id, outcome) in &log.outcomes {
        *count.entry((*round, *id)).or_default() += 1;
        match outcome {
            Outcome::Answered { conn, status, body } => match report.answers.get(&(*conn, *id, *round)) {
                None => broken.push(format!(
                    "request {id} (round {round}) answered, but connection #{conn} sent it no response"
                )),
                Some(answer) => {
                    if answer.planned.status != *status {
                        broken.push(format!(
                            "request {id}: status {status}, the server sent {}",
                            answer.planned.status
                        ));
                    }
                    match answer.body_out() {
                        None => broken.push(format!(
                            "request {id}: complete body, but the server sent only {} of {} bytes",
                            answer.sent,
                            answer.planned.final_end
                        )),
                        Some(sent) if sent != &body[..] => {
                            let at = sent.iter().zip(body).take_while(|(a, b)| a == b).count();
                            broken.push(format!(
                                "request {id}: body of {} bytes differs from the {} bytes the server sent, from byte {at}: {:?}… instead of {:?}…",
                                body.len(),
                                sent.len(),
                                &body[at..(at + 12).min(body.len())],
                                &sent[at..(at + 12).min(sent.len())],
                            ));
                        }
                        Some(_) => {}
                    }
                }
            },
            Outcome::Listed { closed: true } => {
                // A closed connection lists only requests whose response never started.
                let started = report
                    .answers
                    .iter()
                    .any(|(&(_, i, r), a)| (i, r) == (*id, *round) && a.final_started());
                if started {
                    broken.push(format!(
                        "request {id} (round {round}) listed unanswered, but its response had started"
                    ));
                }
            }
            Outcome::Listed { closed: false } | Outcome::Failed(_) => {}
        }
    }
    for (&(round, id), &n) in &count {
        if n > 1 {
            broken.push(format!(
                "request {id} (round {round}) reported {n} times: {:?}",
                log.outcomes
                    .iter()
                    .filter(|(r, i, _)| (*r, *i) == (round, id))
                    .map(|(_, _, o)| o)
                    .collect::<Vec<_>>()
            ));
        }
    }
    for &(round, id) in &log.attempts {
        let seen = report.seen.iter().any(|&(_, r, i)| (r, i) == (round, id));
        let sent = log.sent_ok.contains(&(round, id));
        if (seen || sent) && !count.contains_key(&(round, id)) {
            broken.push(format!(
                "request {id} (round {round}; send ok: {sent}, server saw it: {seen}) neither answered nor reported"
            ));
        }
    }
    if liveness {
        for r in requests {
            if !log.is_answered(r.id) {
                broken.push(format!(
                    "request {} never answered, though the last round's server was faultless",
                    r.id
                ));
            }
        }
    }
    broken
}
