mod common;
use common::*;

#[tokio::test]
async fn redis_lifecycle() {
    let t = std::time::Instant::now();
    let mut redis = RedisServer::start().await;
    println!("started in {:?}", t.elapsed());
    assert!(redis_ping(redis.port()).await);
    redis.kill();
    assert!(!redis_ping(redis.port()).await);
    let t = std::time::Instant::now();
    redis.restart().await;
    println!("restarted in {:?}", t.elapsed());
    assert!(redis_ping(redis.port()).await);
    println!("{}", redis.log_tail(5));
    println!("{}", TestConfig::default().limit("hello_timeout_ms", 1000).to_toml());
}

#[tokio::test]
async fn hub_start_fails_nicely() {
    let redis = RedisServer::start().await;
    let _hub = Hub::start(&redis, &TestConfig::default().to_toml()).await;
}
