//! Reading the relays' drop counters and logs from outside: the exact
//! deltas each attack must produce, and waits that let a debug-build relay
//! catch up, so that a count is compared only once it has settled.

use super::*;

/// The network drop counters of host `h`'s relay, every reason included
/// (`no_session` too: several attacks must land there) but `duplicate`:
/// the genuine peers' redundant copies, which go on during every attack.
pub(super) fn net_drops(lab: &Lab, h: usize) -> HashMap<String, u64> {
    let all = lab.relay_counters(h);
    DropReason::ALL
        .iter()
        .filter(|r| r.from_network() && **r != DropReason::Duplicate)
        .map(|r| {
            (
                r.name().to_string(),
                all.get(r.name()).copied().unwrap_or(0),
            )
        })
        .collect()
}

pub(super) fn grown(
    now: &HashMap<String, u64>,
    before: &HashMap<String, u64>,
) -> HashMap<String, u64> {
    now.iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Waits until `h`'s network drops grew by `total`, then a little longer
/// for stragglers; returns the growth.
pub(super) fn drops_after(
    lab: &Lab,
    h: usize,
    before: &HashMap<String, u64>,
    total: u64,
) -> HashMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let g = grown(&net_drops(lab, h), before);
        if g.values().sum::<u64>() >= total || Instant::now() > deadline {
            std::thread::sleep(Duration::from_millis(100));
            return grown(&net_drops(lab, h), before);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The growth of `h`'s network drops once it stops changing.
pub(super) fn settled_drops(
    lab: &Lab,
    h: usize,
    before: &HashMap<String, u64>,
) -> HashMap<String, u64> {
    let mut last = grown(&net_drops(lab, h), before);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = grown(&net_drops(lab, h), before);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

pub(super) fn expect(
    lab: &Lab,
    h: usize,
    before: &HashMap<String, u64>,
    expected: &[(&str, usize)],
    what: &str,
) {
    let want: HashMap<String, u64> = expected
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.to_string(), *n as u64))
        .collect();
    let got = drops_after(lab, h, before, want.values().sum());
    assert_eq!(got, want, "{what}: drops counted by h{h}'s relay");
}

pub(super) fn injected(lab: &Lab, h: usize) -> u64 {
    lab.relay_counters(h).get("injected").copied().unwrap_or(0)
}

/// The packets host `h`'s relay has written into its interface from peer
/// `from`, as its status tells.
pub(super) fn packets_in(lab: &Lab, h: usize, from: usize) -> u64 {
    let st = lab.relay_status(h);
    let name = format!("h{from}");
    st["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name.as_str()))
        .and_then(|p| p["packets_in"].as_u64())
        .unwrap_or_else(|| panic!("h{h}'s status has no packets_in for {name}: {st}"))
}

/// Lets every member's initiation budget at every relay fill up again
/// (10 a second, bursts of 10), so that the next handshake attack is
/// judged on its merits, not refused by the rate limit.
pub(super) fn refill_handshake_budget() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// Lines containing both needles.
pub(super) fn count_lines2(path: &std::path::Path, a: &str, b: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(a) && l.contains(b))
        .count()
}

/// Waits until each relay in `hosts` logged `needle` about peer h3 once
/// more than `before` says.
pub(super) fn wait_logged(lab: &Lab, hosts: &[usize], needle: &str, before: &[usize]) {
    for (i, &h) in hosts.iter().enumerate() {
        let log = lab.relay_log(h);
        lab::wait_for(
            &format!("h{h}'s relay to log \"{needle}\" for h3"),
            Duration::from_secs(10),
            || (count_lines2(&log, needle, "peer=h3") > before[i]).then_some(()),
        );
    }
}

pub(super) fn logged(lab: &Lab, hosts: &[usize], needle: &str) -> Vec<usize> {
    hosts
        .iter()
        .map(|&h| count_lines2(&lab.relay_log(h), needle, "peer=h3"))
        .collect()
}
