//! Packet capture with tcpdump inside a lab host, and a reader for the
//! classic pcap files it writes: enough to prove what was (and was not)
//! written into an interface.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use super::{Lab, signal, wait_for};

pub const PROGRAMS: &[(&str, &str)] = &[("tcpdump", "tcpdump")];

/// A running tcpdump.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Lab {
    /// Captures on `dev` of `host`, direction `in`, `out` or `inout`, with a
    /// pcap `filter`; returns once tcpdump listens.
    pub fn capture(
        &self,
        host: usize,
        dev: &str,
        direction: &str,
        filter: &str,
        name: &str,
    ) -> Capture {
        super::require_programs(PROGRAMS);
        let file = self.path(&format!("{name}.pcap"));
        let log = self.path(&format!("{name}.tcpdump.log"));
        let f = file.display().to_string();
        let mut args = vec![
            "tcpdump",
            "-i",
            dev,
            "-Q",
            direction,
            // Hand over each packet at once: otherwise the kernel batches
            // them for up to a second, and a stop loses that last batch.
            "--immediate-mode",
            "-U",
            "-n",
            "-Z",
            "root",
            "-s",
            "0",
            "-w",
            &f,
        ];
        args.extend(filter.split_whitespace());
        let child = self.spawn_child(host, &args, &log);
        wait_for(
            "tcpdump to start listening",
            Duration::from_secs(10),
            || {
                fs::read_to_string(&log)
                    .ok()
                    .filter(|t| t.contains("listening on"))
                    .map(|_| ())
            },
        );
        Capture { child, file }
    }
}

impl Capture {
    /// The packets captured so far (tcpdump writes each one at once).
    pub fn packets(&self) -> Vec<Vec<u8>> {
        let data = fs::read(&self.file).unwrap_or_default();
        read_pcap(&data).unwrap_or_default()
    }

    /// Stops tcpdump (flushing its file) and returns the captured packets,
    /// each starting at the link-layer header of the capture.
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        signal(self.child.id(), libc::SIGINT);
        let _ = self.child.wait();
        let data = fs::read(&self.file).unwrap_or_default();
        read_pcap(&data).unwrap_or_else(|e| panic!("{}: {e}", self.file.display()))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a classic (microsecond or nanosecond, little or big endian) pcap.
pub fn read_pcap(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if data.len() < 24 {
        return Err("no pcap header".into());
    }
    let magic = [data[0], data[1], data[2], data[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(format!("not a pcap file (magic {magic:02x?})")),
    };
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let incl = u32_at(&data[at + 8..at + 12]) as usize;
        let start = at + 16;
        let end = start + incl;
        if end > data.len() {
            break; // a record cut short by the stop
        }
        out.push(data[start..end].to_vec());
        at = end;
    }
    Ok(out)
}

/// The UDP payload of an Ethernet/IPv4 frame, if it is one.
pub fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let ip = frame.get(14..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.first()? >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if *ip.get(9)? != 17 {
        return None;
    }
    ip.get(ihl + 8..)
}

/// How often each distinct packet occurs.
pub fn multiset(packets: &[Vec<u8>]) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for p in packets {
        *m.entry(p.clone()).or_insert(0) += 1;
    }
    m
}
