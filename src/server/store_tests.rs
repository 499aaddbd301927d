use super::*;

#[test]
fn zz_time_keygen() {
    let t = std::time::Instant::now();
    for _ in 0..5 {
        let _ = crate::server::jwt::Signer::generate().unwrap();
    }
    eprintln!("keygen x5: {:?}", t.elapsed());
    let _ = Store::new(Limits::default(), Factors::default(), true, "t".into());
}
