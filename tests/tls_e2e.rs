//! DICOM over TLS end to end: DCMTK findscu with `--enable-tls` against `mwlbridge serve`
//! with a server certificate, then with client certificates required.

mod common;

use std::path::Path;
use std::process::Command;

use common::booking;
use common::scp::{Site, findscu};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate and a client certificate, all issued by the CA.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=mwlbridge test CA",
            "-days",
            "2",
        ],
    );
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        let ext = format!("{name}.ext");
        std::fs::write(
            dir.join(&ext),
            format!("basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"),
        )
        .expect("write ext");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

fn tls_keys(dir: &Path, client_ca: bool) -> String {
    let p = |f: &str| dir.join(f).display().to_string();
    let mut keys = format!(
        "\n[server.tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        p("server.pem"),
        p("server.key")
    );
    if client_ca {
        keys.push_str(&format!("client_ca = \"{}\"\n", p("ca.pem")));
    }
    keys
}

fn bookings() -> Vec<calpendo_fake::FakeBooking> {
    vec![
        booking(801, "SUB801_Tls_One", "3T Diagnostic", 9),
        booking(802, "SUB802_Tls_Two", "3T Diagnostic", 10),
    ]
}

#[test]
fn queries_over_tls_and_plain_tcp_is_refused() {
    let certs = tempfile::tempdir().expect("tempdir");
    certificates(certs.path());
    let site = Site::start(bookings(), &tls_keys(certs.path(), false));
    let ca = certs.path().join("ca.pem").display().to_string();
    let r = findscu(
        site.port(),
        &["PatientID"],
        &["--anonymous-tls", "--add-cert-file", &ca],
    );
    r.assert_success();
    let mut ids = r.patient_ids();
    ids.sort();
    assert_eq!(ids, ["SUB801", "SUB802"], "{}", r.output);
    // A console without TLS gets nothing, and the server goes on.
    let plain = findscu(site.port(), &["PatientID"], &[]);
    assert!(plain.patient_ids().is_empty(), "{}", plain.output);
    let again = findscu(
        site.port(),
        &["PatientID"],
        &["--anonymous-tls", "--add-cert-file", &ca],
    );
    assert_eq!(again.patient_ids().len(), 2, "{}", again.output);
    assert!(
        site.server.log().contains("tls=true"),
        "{}",
        site.server.log()
    );
}

#[test]
fn client_certificates_are_required_when_a_client_ca_is_set() {
    let certs = tempfile::tempdir().expect("tempdir");
    certificates(certs.path());
    let site = Site::start(bookings(), &tls_keys(certs.path(), true));
    let p = |f: &str| certs.path().join(f).display().to_string();
    let without = findscu(
        site.port(),
        &["PatientID"],
        &["--anonymous-tls", "--add-cert-file", &p("ca.pem")],
    );
    assert!(without.patient_ids().is_empty(), "{}", without.output);
    let with = findscu(
        site.port(),
        &["PatientID"],
        &[
            "--enable-tls",
            &p("client.key"),
            &p("client.pem"),
            "--add-cert-file",
            &p("ca.pem"),
        ],
    );
    with.assert_success();
    assert_eq!(with.patient_ids().len(), 2, "{}", with.output);
}

#[test]
fn unusable_tls_files_are_config_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tls.toml");
    std::fs::write(
        &path,
        "[server.tls]\ncertificate = \"/nonexistent/server.pem\"\nprivate_key = \"/nonexistent/server.key\"\n",
    )
    .expect("write");
    let out = common::run(&["check-config", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("server.tls: certificate /nonexistent/server.pem"),
        "{err}"
    );
}
