//! The media repository: upload, authenticated download, the size limit announcement.

use tandem_conformance::images::{png_64x48, png_size};
use tandem_conformance::{enc, server};

#[test]
fn upload_then_download() {
    let s = server();
    let u = s.register("media");
    let auth = format!("Bearer {}", u.token);
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\nnot really an image".to_vec();
    let r = s.raw(
        "POST",
        "/_matrix/media/v3/upload?filename=cat.png",
        &[("Authorization", &auth), ("Content-Type", "image/png")],
        Some(&png),
    );
    let uri = r.expect(200)["content_uri"].as_str().expect("content_uri").to_owned();
    let (server_name, id) = uri.strip_prefix("mxc://").and_then(|r| r.split_once('/')).expect("an mxc uri");
    let path = format!("/_matrix/client/v1/media/download/{}/{}", enc(server_name), enc(id));
    let got = s.raw("GET", &path, &[("Authorization", &auth)], None);
    assert_eq!(got.status, 200);
    assert_eq!(got.raw, png);
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert!(got.header("content-disposition").is_some_and(|d| d.contains("cat.png")), "{:?}", got.headers);
    // Authenticated media needs a token.
    let anon = s.raw("GET", &path, &[], None);
    assert_eq!(anon.status, 401, "{:?}", anon.body);
    let missing = format!("/_matrix/client/v1/media/download/{}/{}", enc(server_name), "doesnotexist0000");
    s.raw("GET", &missing, &[("Authorization", &auth)], None).expect_err(404, "M_NOT_FOUND");
    let config = u.get("/_matrix/client/v1/media/config").expect(200);
    assert!(config["m.upload.size"].as_u64().is_some_and(|n| n > 0), "{config}");
}

/// Uploads count against their uploader's quota: past it, M_RESOURCE_LIMIT_EXCEEDED and
/// nothing stored; an upload over the size limit is refused as it streams in; another user's
/// quota is their own.
#[test]
fn uploads_past_the_quota_or_the_size_limit_are_refused() {
    if std::env::var_os("TANDEM_CONFORMANCE_URL").is_some() {
        eprintln!("skipped: needs a server started with a small media quota");
        return;
    }
    let s = tandem_conformance::server::Server::spawn_tandem(&[
        ("TANDEM_MEDIA_QUOTA_PER_USER", "10000"),
        ("TANDEM_MAX_REQUEST_SIZE", "8000"),
    ]);
    let upload = |token: &str, bytes: &[u8]| {
        let auth = format!("Bearer {token}");
        s.raw(
            "POST",
            "/_matrix/media/v3/upload",
            &[("Authorization", &auth), ("Content-Type", "text/plain")],
            Some(bytes),
        )
    };
    let u = s.register("quota");
    upload(&u.token, &[b'a'; 6000]).expect(200);
    upload(&u.token, &[b'b'; 6000]).expect_err(400, "M_RESOURCE_LIMIT_EXCEEDED");
    upload(&u.token, &[b'c'; 4000]).expect(200);
    upload(&u.token, &[b'd'; 1]).expect_err(400, "M_RESOURCE_LIMIT_EXCEEDED");
    let other = s.register("quota");
    upload(&other.token, &[b'e'; 9000]).expect_err(413, "M_TOO_LARGE");
    upload(&other.token, &[b'f'; 7000]).expect(200);
}

/// An id created first and uploaded to later (v1.7): only its creator may upload, once; a
/// download waits for the bytes, or says they are not there yet; a user holds only a few
/// such ids at once.
#[test]
fn media_created_first_is_uploaded_later() {
    let s = server();
    let u = s.register("asyncmedia");
    let other = s.register("asyncother");
    let auth = format!("Bearer {}", u.token);
    let created = u.post("/_matrix/media/v1/create", serde_json::json!({})).expect(200);
    let uri = created["content_uri"].as_str().expect("content_uri").to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(created["unused_expires_at"].as_u64().is_some_and(|t| t > now), "{created}");
    let (server_name, id) = uri.strip_prefix("mxc://").and_then(|r| r.split_once('/')).expect("an mxc uri");
    let download = format!("/_matrix/client/v1/media/download/{}/{}", enc(server_name), enc(id));
    s.raw("GET", &format!("{download}?timeout_ms=100"), &[("Authorization", &auth)], None)
        .expect_err(504, "M_NOT_YET_UPLOADED");

    let put = format!("/_matrix/media/v3/upload/{}/{}?filename=late.txt", enc(server_name), enc(id));
    let other_auth = format!("Bearer {}", other.token);
    s.raw("PUT", &put, &[("Authorization", &other_auth), ("Content-Type", "text/plain")], Some(b"not yours"))
        .expect_err(403, "M_FORBIDDEN");
    // A download started before the upload gets the bytes once they arrive.
    let waiting = {
        let (addr, path, auth) = (s.addr(), format!("{download}?timeout_ms=15000"), auth.clone());
        std::thread::spawn(move || {
            tandem_conformance::http::request(&addr, "GET", &path, &[("Authorization", &auth)], None)
        })
    };
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "text/plain")];
    assert_eq!(s.raw("PUT", &put, &headers, Some(b"here at last")).expect(200), serde_json::json!({}));
    let got = waiting.join().expect("the waiting download");
    assert_eq!((got.status, got.raw.as_slice()), (200, &b"here at last"[..]), "{:?}", got.body);
    s.raw("PUT", &put, &headers, Some(b"again")).expect_err(409, "M_CANNOT_OVERWRITE_MEDIA");
    let unknown = format!("/_matrix/media/v3/upload/{}/{}", enc(server_name), "neverCreated0000");
    s.raw("PUT", &unknown, &headers, Some(b"x")).expect_err(404, "M_NOT_FOUND");

    // Ids waiting for bytes are limited per user.
    let mut refused = None;
    for _ in 0..10 {
        let r = u.post("/_matrix/media/v1/create", serde_json::json!({}));
        if r.status != 200 {
            refused = Some(r);
            break;
        }
    }
    refused.expect("no limit on created ids").expect_err(429, "M_LIMIT_EXCEEDED");
}

/// Thumbnails are images of the size asked for (a crop fills the box; a scale fits in it and
/// is never larger than the original); media that is not an image cannot be thumbnailed (400).
#[test]
fn thumbnails_are_made_in_the_sizes_asked_for() {
    let s = server();
    let u = s.register("thumbs");
    let auth = format!("Bearer {}", u.token);
    let png = png_64x48();
    assert_eq!(png_size(&png), (64, 48));
    let upload = |bytes: &[u8], content_type: &str| {
        let r = s.raw(
            "POST",
            "/_matrix/media/v3/upload",
            &[("Authorization", &auth), ("Content-Type", content_type)],
            Some(bytes),
        );
        let uri = r.expect(200)["content_uri"].as_str().expect("content_uri").to_owned();
        uri.strip_prefix("mxc://").expect("mxc").to_owned()
    };
    let image = upload(&png, "image/png");
    let thumb = |mxc: &str, query: &str| {
        s.raw("GET", &format!("/_matrix/client/v1/media/thumbnail/{mxc}?{query}"), &[("Authorization", &auth)], None)
    };
    for _ in 0..2 {
        // The second time from the stored thumbnail.
        let crop = thumb(&image, "width=32&height=32&method=crop");
        assert_eq!(crop.status, 200, "{:?}", crop.body);
        assert_eq!(crop.header("content-type"), Some("image/png"));
        assert_eq!(png_size(&crop.raw), (32, 32));
    }
    let scaled = thumb(&image, "width=320&height=240&method=scale");
    assert_eq!(scaled.status, 200, "{:?}", scaled.body);
    let (w, h) = png_size(&scaled.raw);
    assert!(w <= 64 && h <= 48 && w * 48 == h * 64, "a scale keeps the aspect ratio and does not enlarge: {w}x{h}");

    thumb(&image, "height=32&method=crop").expect_err(400, "M_MISSING_PARAM");
    let text = upload(b"just words", "text/plain");
    assert_eq!(thumb(&text, "width=32&height=32&method=crop").status, 400);
}
