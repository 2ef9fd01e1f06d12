//! An EC2 API for the cloud VIP hooks: moto's server (the emulator
//! `integration/install-deps` installs in a venv) inside the lab's cloud
//! namespace, on br0's own address [`API_ADDR`], so every host reaches it as
//! a VPC's hosts reach the EC2 endpoint. [`Ec2::start`] seeds it with the
//! aws CLI, as an operator's tooling would: a VPC, a subnet, one instance
//! per lab host (its primary ENI holding 10.77.0.h), an Elastic IP and a
//! route table, the EIP and the route for [`super::vip::VIP4`] on host 1.
//!
//! moto keeps its state in memory: [`Ec2::refuse`] makes the API fail
//! (connections refused) and [`Ec2::accept`] brings it back as it was.
//!
//! A quirk to know: moto 5 leaves a secondary private address that
//! `assign-private-ip-addresses --allow-reassignment` moved on the old
//! interface too ([`Ec2::private_ips`] then lists it on both); EC2 moves it.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Lab, in_ns, signal, wait_for};

/// br0's address in the cloud namespace: above the VIPs of
/// [`super::vrrp_cluster`], below the broadcast address. (.96 would be
/// host 96's, the lab's largest.)
pub const API_ADDR: &str = "10.77.0.254";
pub const API_PORT: u16 = 5000;
pub const MOTO_SERVER: &str = "/opt/mcast-relay-lab/moto/bin/moto_server";
/// Debian's aws CLI (package awscli), never a pyenv shim.
pub const AWS: &str = "/usr/bin/aws";
/// An AMI moto ships in us-east-1.
const AMI: &str = "ami-03cf127a";
const REGION: &str = "us-east-1";
/// How long one aws CLI call may take (its own start is about 1 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub const PROGRAMS: &[(&str, &str)] = &[
    (AWS, "awscli"),
    ("curl", "curl"),
    (MOTO_SERVER, "python3-venv; then ./integration/install-deps"),
];

/// The nftables table of [`Ec2::refuse`], in the cloud namespace.
const REFUSE_TABLE: &str = "lab_cloud_refuse";

impl Lab {
    /// The cloud namespace: the bridge every host's eth0 hangs off.
    pub fn cloud_ns(&self) -> String {
        self.cloud()
    }
}

pub struct Ec2 {
    ns: String,
    child: Child,
    /// The lab's directory, for the CLI's HOME.
    dir: PathBuf,
    /// Host h's primary ENI at index h - 1.
    enis: Vec<String>,
    instances: Vec<String>,
    vpc: String,
    subnet: String,
    allocation: String,
    public_ip: String,
    route_table: String,
}

impl Ec2 {
    /// Starts moto in the cloud namespace, waits until it answers and seeds
    /// it (about 1 s to start and 8 s to seed on the 2-core machine: each
    /// aws CLI call costs a second of Python start-up).
    pub fn start(lab: &mut Lab) -> Ec2 {
        super::require_programs(PROGRAMS);
        let ns = lab.cloud_ns();
        // br0 answers for the API: traffic to it is delivered locally, not
        // forwarded, so the bridge's multicast rule (forward chain) never
        // sees it; ARP is accepted there anyway.
        in_ns(
            &ns,
            &["ip", "addr", "add", &format!("{API_ADDR}/24"), "dev", "br0"],
        );
        let log = lab.path("moto.log");
        let out = fs::File::create(&log).expect("cannot create moto.log");
        let err = out.try_clone().expect("cannot clone a log file handle");
        let port = API_PORT.to_string();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                MOTO_SERVER,
                "-H",
                API_ADDR,
                "-p",
                &port,
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {MOTO_SERVER}: {e}"));
        let home = lab.path("aws-home");
        fs::create_dir_all(&home).expect("cannot create the aws CLI's HOME");
        // The relay runs its hooks as nobody: HOME must be theirs to write.
        let _ = Command::new("chmod").arg("1777").arg(&home).status();
        let mut ec2 = Ec2 {
            ns,
            child,
            dir: lab.dir.clone(),
            enis: Vec::new(),
            instances: Vec::new(),
            vpc: String::new(),
            subnet: String::new(),
            allocation: String::new(),
            public_ip: String::new(),
            route_table: String::new(),
        };
        let started = Instant::now();
        wait_for(
            &format!("moto_server to answer on {}", ec2.endpoint()),
            Duration::from_secs(30),
            || ec2.answers().then_some(()),
        );
        eprintln!("moto_server answered after {:?}", started.elapsed());
        let seeded = Instant::now();
        ec2.seed(lab.hosts);
        eprintln!("EC2 emulator seeded in {:?}", seeded.elapsed());
        ec2
    }

    /// True when moto answers HTTP on its port (from the cloud namespace).
    fn answers(&self) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "curl", "-s", "-o", "/dev/null"])
            .args(["--max-time", "1", &format!("{}/moto-api/", self.endpoint())])
            .status()
            .is_ok_and(|s| s.success())
    }

    fn seed(&mut self, hosts: usize) {
        self.vpc = self.aws_text(&[
            "create-vpc",
            "--cidr-block",
            "10.77.0.0/16",
            "--query",
            "Vpc.VpcId",
        ]);
        self.subnet = self.aws_text(&[
            "create-subnet",
            "--vpc-id",
            &self.vpc,
            "--cidr-block",
            "10.77.0.0/24",
            "--query",
            "Subnet.SubnetId",
        ]);
        // One run-instances per host, for its address; in parallel, since
        // each CLI call is mostly its own start-up.
        let calls: Vec<_> = (1..=hosts)
            .map(|h| {
                let args: Vec<String> = [
                    "run-instances",
                    "--image-id",
                    AMI,
                    "--instance-type",
                    "t3.micro",
                    "--subnet-id",
                    &self.subnet,
                    "--private-ip-address",
                    &format!("10.77.0.{h}"),
                    "--query",
                    "Instances[0].[InstanceId,NetworkInterfaces[0].NetworkInterfaceId]",
                    "--output",
                    "text",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let cmd = self.aws_command(&args.iter().map(String::as_str).collect::<Vec<_>>());
                (h, args, spawn_piped(cmd))
            })
            .collect();
        for (h, args, child) in calls {
            let text = finish(child, &args);
            let mut words = text.split_whitespace();
            let (Some(id), Some(eni)) = (words.next(), words.next()) else {
                panic!("run-instances for h{h} printed no instance and ENI: {text:?}");
            };
            self.instances.push(id.to_string());
            self.enis.push(eni.to_string());
        }
        let alloc = self.aws_text(&[
            "allocate-address",
            "--domain",
            "vpc",
            "--query",
            "[AllocationId,PublicIp]",
        ]);
        let mut words = alloc.split_whitespace();
        self.allocation = words.next().expect("allocate-address: no id").to_string();
        self.public_ip = words.next().expect("allocate-address: no IP").to_string();
        self.route_table = self.aws_text(&[
            "create-route-table",
            "--vpc-id",
            &self.vpc,
            "--query",
            "RouteTable.RouteTableId",
        ]);
        let eni1 = self.enis[0].clone();
        let vip = format!("{}/32", super::vip::VIP4);
        self.aws(&[
            "create-route",
            "--route-table-id",
            &self.route_table,
            "--destination-cidr-block",
            &vip,
            "--network-interface-id",
            &eni1,
        ]);
        let alloc = self.allocation.clone();
        self.aws(&[
            "associate-address",
            "--allocation-id",
            &alloc,
            "--network-interface-id",
            &eni1,
        ]);
    }

    /// `http://10.77.0.254:5000`, as the hosts reach it.
    pub fn endpoint(&self) -> String {
        format!("http://{API_ADDR}:{API_PORT}")
    }

    /// Host h's primary ENI.
    pub fn eni(&self, h: usize) -> &str {
        &self.enis[h - 1]
    }

    pub fn instance(&self, h: usize) -> &str {
        &self.instances[h - 1]
    }

    pub fn allocation_id(&self) -> &str {
        &self.allocation
    }

    /// The Elastic IP's public address.
    pub fn public_ip(&self) -> &str {
        &self.public_ip
    }

    pub fn route_table(&self) -> &str {
        &self.route_table
    }

    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    /// The host whose ENI is `eni`, if it is one of the lab's.
    pub fn host_of(&self, eni: &str) -> Option<usize> {
        self.enis.iter().position(|e| e == eni).map(|i| i + 1)
    }

    /// The ENI the Elastic IP is associated with now.
    pub fn eip_eni(&self) -> Option<String> {
        let alloc = self.allocation.clone();
        none_if_empty(self.aws_text(&[
            "describe-addresses",
            "--allocation-ids",
            &alloc,
            "--query",
            "Addresses[0].NetworkInterfaceId",
        ]))
    }

    /// The ENI the seeded route table's route for `cidr` points at now
    /// (an IPv4 CIDR such as `10.77.0.100/32`, or an IPv6 one).
    pub fn route_eni(&self, cidr: &str) -> Option<String> {
        let field = if cidr.contains(':') {
            "DestinationIpv6CidrBlock"
        } else {
            "DestinationCidrBlock"
        };
        let rtb = self.route_table.clone();
        let query = format!("RouteTables[0].Routes[?{field}=='{cidr}'].NetworkInterfaceId | [0]");
        none_if_empty(self.aws_text(&[
            "describe-route-tables",
            "--route-table-ids",
            &rtb,
            "--query",
            &query,
        ]))
    }

    /// Every private IPv4 address on host h's ENI, the primary first.
    pub fn private_ips(&self, h: usize) -> Vec<String> {
        let eni = self.eni(h).to_string();
        self.aws_text(&[
            "describe-network-interfaces",
            "--network-interface-ids",
            &eni,
            "--query",
            "NetworkInterfaces[0].PrivateIpAddresses[].PrivateIpAddress",
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    /// Makes the API refuse connections (TCP reset), state kept: the aws
    /// CLI fails at once, as when the endpoint is down.
    pub fn refuse(&self) {
        super::nft(
            &self.ns,
            &format!(
                "table inet {REFUSE_TABLE} {{\n chain input {{\n  type filter hook input priority -10;\n  \
                 tcp dport {API_PORT} reject with tcp reset\n }}\n}}\n"
            ),
        );
    }

    /// Undoes [`Ec2::refuse`].
    pub fn accept(&self) {
        in_ns(&self.ns, &["nft", "delete", "table", "inet", REFUSE_TABLE]);
    }

    /// Stops the emulator, state kept: SIGSTOP, so calls hang until their
    /// timeout instead of failing (a stalled API).
    pub fn stop(&self) {
        signal(self.child.id(), libc::SIGSTOP);
    }

    /// Undoes [`Ec2::stop`].
    pub fn restart(&self) {
        signal(self.child.id(), libc::SIGCONT);
    }

    /// The environment a relay on host h needs for the shipped AWS hooks:
    /// this host's ENI, the emulator's endpoint, test keys and region,
    /// Debian's aws first on PATH, no config files and a HOME the relay's
    /// unprivileged user may write.
    pub fn hook_env(&self, h: usize) -> Vec<(String, String)> {
        let mut env = self.cli_env();
        env.push(("AWS_ENI_ID".to_string(), self.eni(h).to_string()));
        env
    }

    /// What every aws CLI call needs here, the seeding's before any ENI
    /// exists.
    fn cli_env(&self) -> Vec<(String, String)> {
        let home = self.dir.join("aws-home").display().to_string();
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            // Never the metadata service: an unset AWS_ENI_ID must fail, not
            // leave the lab. Port 9 of loopback refuses at once.
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                "http://127.0.0.1:9".into(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("PATH", "/usr/bin:/bin".into()),
            ("HOME", home),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// `aws ec2 ARGS` from the cloud namespace: its stdout; panics on
    /// failure or after [`CALL_TIMEOUT`].
    pub fn aws(&self, args: &[&str]) -> String {
        finish(spawn_piped(self.aws_command(args)), args)
    }

    /// `aws ec2 ARGS --output text`, trimmed; "None" (the CLI's null) is "".
    fn aws_text(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--output", "text"]);
        let text = self.aws(&all);
        let text = text.trim();
        if text == "None" {
            String::new()
        } else {
            text.to_string()
        }
    }

    fn aws_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns,
            AWS,
            "--endpoint-url",
            &self.endpoint(),
        ])
        .args([
            "--cli-connect-timeout",
            "5",
            "--cli-read-timeout",
            "20",
            "ec2",
        ])
        .args(args)
        .env_clear();
        cmd.envs(self.cli_env());
        cmd
    }
}

impl Drop for Ec2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn none_if_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn spawn_piped(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {AWS}: {e}"))
}

/// Waits for an aws call at most [`CALL_TIMEOUT`]; its stdout, or a panic
/// naming the call and the CLI's error. The output is read on a thread, so
/// a long one cannot fill the pipe and stall the call.
fn finish(child: Child, args: &[impl AsRef<str>]) -> String {
    let what = args.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(CALL_TIMEOUT) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("aws ec2 {what}: {e}"),
        Err(_) => {
            // The reader thread reaps it once it is dead.
            signal(pid, libc::SIGKILL);
            panic!("aws ec2 {what}: no answer after {CALL_TIMEOUT:?}");
        }
    };
    assert!(
        out.status.success(),
        "aws ec2 {what} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8(out.stdout).expect("aws printed UTF-8")
}
