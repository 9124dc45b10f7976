//! `amqp_access` against a real RabbitMQ, by hand: ignored unless asked for, as in
//! `LAB_AMQP_TEST=127.0.0.1:5672,openstack,secret cargo test --test amqp_rights -- --ignored --nocapture`
//! (a fourth field names the vhost, `/` otherwise). It prints what the broker proved.

use lab::provision::amqp::amqp_access;

#[tokio::test]
#[ignore = "needs a RabbitMQ named by LAB_AMQP_TEST=host:port,user,password[,vhost]"]
async fn a_real_broker_proves_each_right() {
    let spec = std::env::var("LAB_AMQP_TEST").expect("LAB_AMQP_TEST=host:port,user,password");
    let mut fields = spec.splitn(4, ',');
    let (Some(at), Some(user), Some(password)) = (fields.next(), fields.next(), fields.next())
    else {
        panic!("LAB_AMQP_TEST={spec:?} is not host:port,user,password[,vhost]");
    };
    let vhost = fields.next().unwrap_or("/");
    let mut s = tokio::net::TcpStream::connect(at).await.expect("connect");
    let access = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        amqp_access(&mut s, user, password, vhost),
    )
    .await
    .expect("the broker answered within 20 s");
    println!("{user} on {at} vhost {vhost}: {access:#?}");
}
