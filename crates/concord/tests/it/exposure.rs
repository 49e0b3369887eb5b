//! The built-in development key (public: it is in the README) is not served on an
//! address other machines can reach unless `server.allow_dev_key_off_loopback` says so.

use std::net::Ipv4Addr;

use concord_crashtest::{Error, Server, messages};

const SETTING: &str = "server.allow_dev_key_off_loopback";

#[test]
fn the_dev_key_on_every_interface_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::spawn_on(
        &super::launch(&data, &[]),
        &dir.path().join("log"),
        Ipv4Addr::UNSPECIFIED.into(),
    )
    .unwrap();
    let exited = server.wait_ready(super::READY);
    let log = server.log();
    match exited {
        Err(Error::ExitedEarly { status, .. }) => {
            assert!(!status.success(), "exit {status}; log:\n{log}");
        }
        other => panic!("not refused: {other:?}; log:\n{log}"),
    }
    assert!(
        log.contains("refusing to listen on 0.0.0.0:"),
        "log:\n{log}"
    );
    assert!(
        log.contains(SETTING),
        "the setting is not named; log:\n{log}"
    );
    assert!(
        log.contains("CONCORD_SERVER__ALLOW_DEV_KEY_OFF_LOOPBACK"),
        "log:\n{log}"
    );
    // refused before the model, the store or the data dir
    assert!(
        !messages(&log).iter().any(|m| m == "loading the model"),
        "log:\n{log}"
    );
    assert!(!data.exists(), "the data dir was created");
}

#[test]
fn the_dev_key_on_every_interface_serves_when_the_setting_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let launch = super::launch(
        &data,
        &[("CONCORD_SERVER__ALLOW_DEV_KEY_OFF_LOOPBACK", "true")],
    );
    let mut server = Server::spawn_on(
        &launch,
        &dir.path().join("log"),
        Ipv4Addr::UNSPECIFIED.into(),
    )
    .unwrap();
    server.wait_ready(super::READY).unwrap();
    // the key works, and the log says loudly that it is exposed
    let answer = server.api().get("/v1/clusters").unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let said = messages(&server.log());
    assert!(
        said.iter()
            .any(|m| m
                .starts_with("the development API key is configured on a non-loopback address")),
        "no warning; log:\n{}",
        server.log()
    );
    let (status, log) = server.terminate(super::EXIT).unwrap();
    assert!(status.success(), "exit {status}; log:\n{log}");
}
