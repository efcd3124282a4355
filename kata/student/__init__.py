"""Student conveniences in the spirit of rustlings: hints level by level, reset, watch, and the helper the lesson
notebooks call. A student's own runs are in-process: no sandbox."""
