// Shared by benches/green.rs and benches/vs_may.rs (`include!`d): one measurement of a task
// switch, so both report the same thing.

/// ns per task switch: two green tasks on one runtime, each yielding `rounds` times.
fn yield_switch_ns(rounds: usize) -> f64 {
    dugong::green::run(move |task| {
        let other = task.spawn(move |task| {
            for _ in 0..rounds {
                task.yield_now();
            }
        });
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            task.yield_now();
        }
        task.join(other).expect("the other task");
        start.elapsed().as_secs_f64() * 1e9 / (2 * rounds) as f64
    })
    .expect("the main task")
}
