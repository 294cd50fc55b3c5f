//! Duct's example sources, one a file as in Duct's guide: `HelloWorld`, its
//! flip-flop variant (state kept between polls), `ProcessCount` (runs
//! `ps -e` with a timeout) and `NumberProxy` (listens on a TCP port and
//! emits every number it is sent, one a line).

pub mod flip_flop;
pub mod hello_world;
pub mod number_proxy;
pub mod process_count;
