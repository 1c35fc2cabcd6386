//! Media across servers: a user's image displays, with its thumbnails, for users of every other
//! server (Tandem and Synapse, both ways); a server's media reach other servers as the
//! federation API's `multipart/mixed` answers; and what a hostile server sends as media is
//! bounded and served so that it cannot run as a page. Run as the oracle every server is a
//! Synapse; what only Tandem does (asking an older server at the legacy path, following a
//! `Location` over TLS it does not verify in tests) is asserted of Tandem only and says so.

use serde_json::Value;
use tandem_conformance::federation::{Kind, Peer};
use tandem_conformance::hostile::{Hostile, Reply};
use tandem_conformance::images::{png_64x48, png_size};
use tandem_conformance::{Response, Server, User, enc};

/// Uploads `bytes` as `name`; the `server/id` of its `mxc://` URI.
fn upload(server: &Server, user: &User, bytes: &[u8], content_type: &str, name: &str) -> String {
    let auth = format!("Bearer {}", user.token);
    let path = format!("/_matrix/media/v3/upload?filename={}", enc(name));
    let r = server.raw("POST", &path, &[("Authorization", &auth), ("Content-Type", content_type)], Some(bytes));
    let uri = r.expect(200)["content_uri"].as_str().expect("content_uri").to_owned();
    uri.strip_prefix("mxc://").expect("mxc").to_owned()
}

fn get(server: &Server, user: &User, path: &str) -> Response {
    server.raw("GET", path, &[("Authorization", &format!("Bearer {}", user.token))], None)
}

/// One part of a `multipart/mixed` answer: its lower-cased headers and its body.
type Part = (Vec<(String, String)>, Vec<u8>);

/// The parts of a `multipart/mixed` answer.
fn parts(r: &Response) -> Vec<Part> {
    let content_type = r.header("content-type").expect("a content type");
    assert!(content_type.starts_with("multipart/mixed"), "{content_type}");
    let boundary = content_type.split("boundary=").nth(1).expect("a boundary").trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    // The first delimiter may open the body without the CRLF before it.
    let body = [b"\r\n".as_slice(), &r.raw].concat();
    let mut out = Vec::new();
    let mut rest = &body[..];
    let mut preamble = true;
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        let part = &rest[..at];
        rest = &rest[at + delimiter.len()..];
        if !std::mem::take(&mut preamble) {
            let split = find(part, b"\r\n\r\n").expect("headers end");
            let headers = String::from_utf8_lossy(&part[..split])
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            out.push((headers, part[split + 4..].to_vec()));
        }
        if rest.starts_with(b"--") {
            break;
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A federation media answer as a hostile server writes it: `{}`, then `body` under these
/// part headers, then `filler` bytes more (without the closing delimiter when there are any).
fn multipart(part_headers: &[(&str, &str)], body: &[u8], filler: usize) -> Reply {
    let boundary = "hostileBoundary42";
    let mut out =
        format!("--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\n").into_bytes();
    for (k, v) in part_headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    if filler == 0 {
        out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    }
    let headers = vec![("Content-Type".to_owned(), format!("multipart/mixed; boundary={boundary}"))];
    Reply::Raw { status: 200, headers, body: out, filler }
}

const FEDERATION_DOWNLOAD: &str = "/_matrix/federation/v1/media/download/";

/// The proof of the issue: an image uploaded on each server displays for a user of each other
/// server, whole and as a thumbnail; asked again, it comes from the copy kept.
#[test]
fn images_cross_servers_with_thumbnails_both_ways() {
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Tandem, None), Peer::start(Kind::Synapse, None)];
    let users: Vec<User> = peers.iter().map(|p| p.server.register("media")).collect();
    let png = png_64x48();
    for (i, from) in peers.iter().enumerate() {
        let mxc = upload(&from.server, &users[i], &png, "image/png", "cat.png");
        for (j, to) in peers.iter().enumerate().filter(|(j, _)| *j != i) {
            let what = format!("{:?} {} → {:?} {}", from.kind, from.name, to.kind, to.name);
            for _ in 0..2 {
                let got = get(&to.server, &users[j], &format!("/_matrix/client/v1/media/download/{mxc}"));
                assert_eq!(got.status, 200, "{what}: {:?}", got.body);
                assert_eq!(got.raw, png, "{what}");
                assert_eq!(got.header("content-type"), Some("image/png"), "{what}");
                let disposition = got.header("content-disposition").unwrap_or_default();
                assert!(disposition.contains("cat.png"), "{what}: {disposition}");
            }
            let thumb = get(
                &to.server,
                &users[j],
                &format!("/_matrix/client/v1/media/thumbnail/{mxc}?width=32&height=32&method=crop"),
            );
            assert_eq!(thumb.status, 200, "{what}: {:?}", thumb.body);
            assert_eq!(png_size(&thumb.raw), (32, 32), "{what}");
        }
    }
}

/// Another server asks for media with a signed request and gets the federation API's answer:
/// `multipart/mixed`, the JSON metadata first, then the bytes (or a thumbnail of them).
#[test]
fn a_servers_media_reach_other_servers_as_multipart_answers() {
    let victim = Peer::start(Kind::Tandem, None);
    let other = Hostile::start();
    let alice = victim.server.register("alice");
    let png = png_64x48();
    let mxc = upload(&victim.server, &alice, &png, "image/png", "cat.png");
    let id = mxc.rsplit('/').next().expect("id");

    let r = other.request(&victim.name, "GET", &format!("{FEDERATION_DOWNLOAD}{id}"), None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let got = parts(&r);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(header(&got[0].0, "content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&got[0].1).expect("JSON metadata").is_object());
    assert_eq!(header(&got[1].0, "content-type"), Some("image/png"));
    assert_eq!(got[1].1, png);

    let path = format!("/_matrix/federation/v1/media/thumbnail/{id}?width=32&height=32&method=crop");
    let r = other.request(&victim.name, "GET", &path, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(png_size(&parts(&r)[1].1), (32, 32));

    let r = other.request(&victim.name, "GET", &format!("{FEDERATION_DOWNLOAD}neverUploaded0000"), None);
    r.expect_err(404, "M_NOT_FOUND");
    let unsigned =
        tandem_conformance::fedclient::send(&victim.name, "GET", &format!("{FEDERATION_DOWNLOAD}{id}"), &[], None);
    assert_eq!(unsigned.status, 401, "{:?}", unsigned.body);
}

/// A hostile server's page is served as an attachment under a sandboxing policy: it never runs
/// as a page of the victim's origin.
#[test]
fn a_remote_servers_html_is_served_as_an_attachment() {
    let victim = Peer::start(Kind::Tandem, None);
    let hostile = Hostile::start();
    let alice = victim.server.register("alice");
    let page = b"<html><script>steal(document.cookie)</script></html>".to_vec();
    let served = page.clone();
    hostile.script(move |r| {
        r.path.starts_with(FEDERATION_DOWNLOAD).then(|| multipart(&[("Content-Type", "text/html")], &served, 0))
    });
    let got = get(&victim.server, &alice, &format!("/_matrix/client/v1/media/download/{}/evilPage", hostile.name));
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.raw, page);
    let disposition = got.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let policy = got.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("sandbox"), "{policy}");
}

/// Media larger than the server takes (50 MiB) is cut off while it streams, answered 502
/// `M_TOO_LARGE`, and nothing of it is kept: asked again, it is refused again.
#[test]
fn remote_media_over_the_size_limit_is_refused_and_not_kept() {
    let victim = Peer::start(Kind::Tandem, None);
    let hostile = Hostile::start();
    let alice = victim.server.register("alice");
    hostile.script(|r| {
        r.path
            .starts_with(FEDERATION_DOWNLOAD)
            .then(|| multipart(&[("Content-Type", "application/octet-stream")], b"", 51 * 1024 * 1024))
    });
    for _ in 0..2 {
        let r = get(&victim.server, &alice, &format!("/_matrix/client/v1/media/download/{}/hugeFile", hostile.name));
        r.expect_err(502, "M_TOO_LARGE");
    }
}

/// Answers that are not media as the API gives them (JSON instead of multipart, a redirect to
/// a `file:` URL) are refused with 502.
#[test]
fn malformed_remote_media_answers_are_refused() {
    let victim = Peer::start(Kind::Tandem, None);
    let hostile = Hostile::start();
    let alice = victim.server.register("alice");
    hostile.script(|r| {
        if r.path.starts_with(&format!("{FEDERATION_DOWNLOAD}jsonInstead")) {
            Some(Reply::Json(200, serde_json::json!({ "not": "media" })))
        } else if r.path.starts_with(&format!("{FEDERATION_DOWNLOAD}localFile")) {
            Some(multipart(&[("Location", "file:///etc/passwd")], b"", 0))
        } else {
            None
        }
    });
    for id in ["jsonInstead", "localFile"] {
        let r = get(&victim.server, &alice, &format!("/_matrix/client/v1/media/download/{}/{id}", hostile.name));
        assert_eq!(r.status, 502, "{id}: {:?}", r.body);
        assert!(!r.raw.windows(5).any(|w| w == b"root:"), "{id}");
    }
}

/// A server without the federation media endpoint (one older than spec v1.11) is asked at the
/// legacy path, unsigned and with `allow_remote=false` so that no two servers bounce a
/// request; a `Location` in a multipart answer is followed. Synapse does neither for
/// authenticated media (it asks the federation endpoint only, and fetches a `Location` with
/// certificate checks that a test server's self-signed certificate fails), so this is
/// asserted of Tandem only.
#[test]
fn older_servers_are_asked_at_the_legacy_path_and_redirects_followed() {
    let victim = Peer::start(Kind::Tandem, None);
    if victim.kind != Kind::Tandem {
        return;
    }
    let hostile = Hostile::start();
    let alice = victim.server.register("alice");
    let png = png_64x48();
    let (served, name) = (png.clone(), hostile.name.clone());
    hostile.script(move |r| {
        if r.path.starts_with(&format!("/_matrix/media/v3/download/{}/oldServer", enc(&name))) {
            let headers = vec![
                ("Content-Type".to_owned(), "image/png".to_owned()),
                ("Content-Disposition".to_owned(), "inline; filename*=UTF-8''%C3%A9t%C3%A9.png".to_owned()),
            ];
            Some(Reply::Raw { status: 200, headers, body: served.clone(), filler: 0 })
        } else if r.path.starts_with(&format!("{FEDERATION_DOWNLOAD}redirected")) {
            Some(multipart(&[("Location", &format!("https://{name}/elsewhere/cat.png"))], b"", 0))
        } else if r.path.starts_with("/elsewhere/cat.png") {
            let headers = vec![("Content-Type".to_owned(), "image/png".to_owned())];
            Some(Reply::Raw { status: 200, headers, body: served.clone(), filler: 0 })
        } else {
            None
        }
    });
    let got = get(&victim.server, &alice, &format!("/_matrix/client/v1/media/download/{}/oldServer", hostile.name));
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.raw, png);
    let disposition = got.header("content-disposition").unwrap_or_default();
    assert!(disposition.contains("filename*=utf-8''%C3%A9t%C3%A9.png"), "{disposition}");
    let legacy = hostile.received("/_matrix/media/v3/download/");
    assert!(legacy.iter().all(|r| r.path.contains("allow_remote=false")), "{legacy:?}");

    let got = get(&victim.server, &alice, &format!("/_matrix/client/v1/media/download/{}/redirected", hostile.name));
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.raw, png);
}

/// The same through the Rust SDK Element X is built on (`conformance/sdk`): an image uploaded
/// by a user of one server loads, whole and as a thumbnail, for a user of the other, Tandem to
/// Synapse and Synapse to Tandem. `scripts/test` builds the SDK check and names it in
/// `TANDEM_SDK_CHECK`.
#[test]
fn element_x_loads_images_of_other_servers() {
    let Some(bin) = std::env::var_os("TANDEM_SDK_CHECK") else {
        eprintln!("skipped: TANDEM_SDK_CHECK not set (scripts/test builds conformance/sdk and sets it)");
        return;
    };
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Synapse, None)];
    let url = |p: &Peer| format!("http://{}", p.server.addr());
    for (a, b) in [(&peers[0], &peers[1]), (&peers[1], &peers[0])] {
        let out =
            std::process::Command::new(&bin).args(["media", &url(a), &url(b)]).output().expect("run the sdk check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.trim_end().ends_with("ok"),
            "the SDK's media flow failed from {:?} to {:?}:\n{stdout}\n{}",
            a.kind,
            b.kind,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
