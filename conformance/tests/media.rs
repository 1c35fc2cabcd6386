//! The media repository: upload, authenticated download, the size limit announcement.

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
