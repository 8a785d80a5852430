pub mod certs;
pub mod cluster;
