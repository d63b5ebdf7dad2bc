//! Bad settings stop start-up with a message naming the setting.

use std::process::Command;

fn start(args: &[&str], unset: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forwarder"));
    cmd.args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("AWS_REGION", "us-west-2")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for v in unset {
        cmd.env_remove(v);
    }
    let out = cmd.output().expect("running the forwarder");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_stop_start_up_naming_the_setting() {
    let base = ["--bus-name", "bus", "--cluster-name", "prod"];
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["--cluster-name", "prod"], "EVENT_BUS_NAME"),
        (
            [&base[..], &["--cluster-name", "no spaces"]].concat(),
            "CLUSTER_NAME",
        ),
        (
            [&base[..], &["--resync-period", "soon"]].concat(),
            "RESYNC_PERIOD",
        ),
        (
            [&base[..], &["--namespaces", "UPPER"]].concat(),
            "WATCH_NAMESPACES",
        ),
        (
            [&base[..], &["--listen", "nowhere"]].concat(),
            "LISTEN_ADDRESS",
        ),
    ];
    for (args, setting) in cases {
        let (code, stderr) = start(&args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(setting),
            "{args:?} should name {setting}: {stderr}"
        );
    }
}

#[test]
fn an_unreachable_cluster_or_missing_region_stops_start_up() {
    let args = ["--bus-name", "bus", "--cluster-name", "prod"];
    let (code, stderr) = start(&args, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("KUBECONFIG"), "{stderr}");
    let (code, stderr) = start(&args, &["AWS_REGION", "AWS_DEFAULT_REGION"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("AWS_REGION"), "{stderr}");
}
