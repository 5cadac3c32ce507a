//! llmkit-tasks: the NLP tasks, prompts, chunking, structured output and privacy redaction.
