//! The kernel model: a [`program::Program`] (memory + debug info + KASLR)
//! and what lives in it: tasks, lists, CPUs, the log, modules.

pub mod cpus;
pub mod info;
pub mod kallsyms;
pub mod modules;
pub mod orc;
pub mod orc_detect;
pub mod printk;
pub mod program;
pub mod stack;
pub mod switch;
pub mod task;

pub use program::{OpenOptions, Program};
pub use task::{
    for_each_task, for_each_task_brief, for_each_task_name, list_for_each, prepare, Task, TaskList,
    Warning,
};
