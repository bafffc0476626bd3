//! The green paths: the schedule's client runs in a task of a simulated green runtime, so its
//! waits go through the runtime's poller and timers. Beside it a second task keeps sleeping
//! for random virtual times: its timers cut the poller's waits short, and the client's
//! socket must stay armed across them.

use std::cell::Cell;
use std::panic::resume_unwind;
use std::rc::Rc;
use std::time::Duration;

use dugong::green::Runtime;
use dugong::{Config, Origin};

use super::client::Log;
use super::rng::Rng;
use super::Schedule;

/// Most naps the timer task takes (it stops as soon as the client is done).
const NAPS: u32 = 100_000;

/// Runs `schedule` in a green task on a connection to `origin`; `rng` draws the naps.
pub(crate) fn run(schedule: Schedule, origin: Origin, config: Config, mut rng: Rng) -> Log {
    let mut runtime = Runtime::simulated(schedule.world.shared_network());
    let done = Rc::new(Cell::new(false));
    let stop = Rc::clone(&done);
    let world = schedule.world.clone();
    let _naps = runtime.spawn(move |task| {
        for _ in 0..NAPS {
            if stop.get() {
                break;
            }
            let nap = Duration::from_millis(rng.pick(&[0, 1, 50, 400, 2000]));
            world.note(|| format!("timer task naps {nap:?}"));
            task.sleep(nap);
            if rng.chance(200) {
                task.yield_now();
            }
        }
    });
    let client = runtime.spawn(move |task| {
        let conn = task.open(&origin, config).expect("a connection");
        let log = schedule.drive(&conn);
        done.set(true);
        log
    });
    match runtime.block_on(client) {
        Ok(log) => log,
        Err(panic) => resume_unwind(panic),
    }
}
