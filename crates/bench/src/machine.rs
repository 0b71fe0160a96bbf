//! What machine a figure was measured on, and how much memory we used.

/// Cores and CPU model, from the OS.
pub fn describe() -> serde_json::Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    serde_json::json!({ "cores": cores, "cpu": model, "os": std::env::consts::OS })
}

/// Peak resident set size of this process so far (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Start measuring the peak resident set size afresh: Linux resets
/// VmHWM to the current RSS when "5" is written to `clear_refs`. Returns
/// whether it could (elsewhere the peak stays the process's).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The 1, 5 and 15 minute load averages (the machine is shared: a figure
/// measured under load is lower than the engine can do).
pub fn load_average() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Milliseconds this machine takes for a fixed piece of work much like a
/// sync's own (short strings formatted, allocated, compared and looked up
/// in a `BTreeMap` of 30,011 keys, a few MiB that do not weigh on the peak
/// memory); best of ten, NaN if its thread failed. The VM's speed changes
/// by a third or more over minutes, so a figure is read beside the
/// reference measured in the same run: a slower reference means a slower
/// machine, not slower code.
pub fn cpu_reference_ms() -> f64 {
    // On a thread of its own: a fresh allocator heap, not the one the
    // scenario left behind.
    std::thread::spawn(reference_work)
        .join()
        .unwrap_or(f64::NAN)
}

fn reference_work() -> f64 {
    let mut best = f64::MAX;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let mut map = std::collections::BTreeMap::new();
        // A fixed permutation of 0..N (N prime, step coprime to it).
        const N: u64 = 30_011;
        let mut i = 0u64;
        for _ in 0..N {
            i = (i + 7_919) % N;
            map.insert(format!("E{i:08}"), i);
        }
        let mut sum = 0u64;
        for j in 0..N {
            sum = sum.wrapping_add(map.get(&format!("E{j:08}")).copied().unwrap_or(0));
        }
        std::hint::black_box(sum);
        best = best.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    (best * 10.0).round() / 10.0
}
