//! Answers in the Responses API's shapes: a whole `response` object, or its typed
//! stream events with sequence numbers.

use serde_json::{json, Value};

use crate::chat::{ChatEvent, Completion, FinishReason, Frame, Usage};

fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        // `cache_write_tokens`: the OpenAI Python SDK (3.x) requires it.
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The `response` object around `output`, in the state a stream or a body reports.
fn response_object(id: &str, created: u64, model: &str, status: &str, output: &[Value]) -> Value {
    json!({
        "id": id, "object": "response", "created_at": created, "status": status,
        "model": model, "output": output, "error": null, "incomplete_details": null,
        "instructions": null, "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
        "text": {"format": {"type": "text"}}, "usage": null,
    })
}

/// A whole `response` for a client that did not stream.
pub fn response_json(model: &str, completion: &Completion) -> Value {
    let mut output = vec![];
    if !completion.text.is_empty() || completion.tool_calls.is_empty() {
        output.push(json!({
            "type": "message", "id": new_id("msg"), "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": completion.text, "annotations": []}],
        }));
    }
    for call in &completion.tool_calls {
        output.push(json!({
            "type": "function_call", "id": new_id("fc"), "call_id": call.id, "name": call.name,
            "arguments": call.arguments, "status": "completed",
        }));
    }
    let incomplete = completion.finish == Some(FinishReason::Length);
    let status = if incomplete {
        "incomplete"
    } else {
        "completed"
    };
    let mut response = response_object(&new_id("resp"), unix_now(), model, status, &output);
    if incomplete {
        response["incomplete_details"] = json!({"reason": "max_output_tokens"});
    }
    response["usage"] = usage_json(&completion.usage.unwrap_or_default());
    response
}

/// The output item being streamed.
enum OpenItem {
    None,
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// Writes the Responses stream's typed events, each `event: <type>` with its JSON and a
/// `sequence_number`, from any provider's frames.
pub struct ResponseEncoder {
    id: String,
    created: u64,
    model: String,
    sequence: u64,
    started: bool,
    open: OpenItem,
    /// Finished output items, for the final `response.completed`.
    output: Vec<Value>,
    finish: Option<FinishReason>,
    usage: Usage,
}

impl ResponseEncoder {
    pub fn new(model: String) -> Self {
        ResponseEncoder {
            id: new_id("resp"),
            created: unix_now(),
            model,
            sequence: 0,
            started: false,
            open: OpenItem::None,
            output: vec![],
            finish: None,
            usage: Usage::default(),
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut event: Value) {
        event["type"] = kind.into();
        event["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(event.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn response(&self, status: &str) -> Value {
        response_object(&self.id, self.created, &self.model, status, &self.output)
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let response = self.response("in_progress");
            self.emit(out, "response.created", json!({"response": response}));
            self.emit(out, "response.in_progress", json!({"response": response}));
        }
    }

    fn close_item(&mut self, out: &mut Vec<u8>) {
        let index = self.output.len();
        match std::mem::replace(&mut self.open, OpenItem::None) {
            OpenItem::None => {}
            OpenItem::Message { id, text } => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut done = at.clone();
                done["text"] = text.clone().into();
                done["logprobs"] = json!([]);
                self.emit(out, "response.output_text.done", done);
                let mut part_done = at;
                part_done["part"] = part.clone();
                self.emit(out, "response.content_part.done", part_done);
                let item = json!({"type": "message", "id": id, "status": "completed",
                    "role": "assistant", "content": [part]});
                self.emit(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.output.push(item);
            }
            OpenItem::Call {
                id,
                call_id,
                name,
                arguments,
            } => {
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": arguments}),
                );
                let item = json!({"type": "function_call", "id": id, "call_id": call_id,
                    "name": name, "arguments": arguments, "status": "completed"});
                self.emit(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.output.push(item);
            }
        }
    }

    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        self.start(out);
        for event in &frame.events {
            match event {
                ChatEvent::Text(delta) => {
                    if !matches!(self.open, OpenItem::Message { .. }) {
                        self.close_item(out);
                        let id = new_id("msg");
                        let item = json!({"type": "message", "id": id, "status": "in_progress",
                            "role": "assistant", "content": []});
                        let index = self.output.len();
                        self.emit(
                            out,
                            "response.output_item.added",
                            json!({"output_index": index, "item": item}),
                        );
                        self.emit(
                            out,
                            "response.content_part.added",
                            json!({"item_id": id,
                            "output_index": index, "content_index": 0,
                            "part": {"type": "output_text", "text": "", "annotations": []}}),
                        );
                        self.open = OpenItem::Message {
                            id,
                            text: String::new(),
                        };
                    }
                    if let OpenItem::Message { id, text } = &mut self.open {
                        text.push_str(delta);
                        let event = json!({"item_id": id, "output_index": self.output.len(),
                            "content_index": 0, "delta": delta, "logprobs": []});
                        self.emit(out, "response.output_text.delta", event);
                    }
                }
                ChatEvent::ToolCallStart {
                    id: call_id, name, ..
                } => {
                    self.close_item(out);
                    let id = new_id("fc");
                    let item = json!({"type": "function_call", "id": id, "call_id": call_id,
                        "name": name, "arguments": "", "status": "in_progress"});
                    let index = self.output.len();
                    self.emit(
                        out,
                        "response.output_item.added",
                        json!({"output_index": index, "item": item}),
                    );
                    self.open = OpenItem::Call {
                        id,
                        call_id: call_id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    };
                }
                ChatEvent::ToolCallDelta {
                    arguments: delta, ..
                } => {
                    if let OpenItem::Call { id, arguments, .. } = &mut self.open {
                        arguments.push_str(delta);
                        let event = json!({"item_id": id, "output_index": self.output.len(), "delta": delta});
                        self.emit(out, "response.function_call_arguments.delta", event);
                    }
                }
                ChatEvent::Finish(reason) => self.finish = Some(*reason),
                ChatEvent::Usage(usage) => self.usage = *usage,
                ChatEvent::End => {
                    self.close_item(out);
                    let incomplete = self.finish == Some(FinishReason::Length);
                    let (kind, status) = if incomplete {
                        ("response.incomplete", "incomplete")
                    } else {
                        ("response.completed", "completed")
                    };
                    let mut response = self.response(status);
                    response["usage"] = usage_json(&self.usage);
                    if incomplete {
                        response["incomplete_details"] = json!({"reason": "max_output_tokens"});
                    }
                    self.emit(out, kind, json!({"response": response}));
                }
            }
        }
    }

    /// A failure after the stream started: an `error` event, then `response.failed`.
    pub fn error(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        self.start(out);
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        let mut response = self.response("failed");
        // `response.error.code` is one of OpenAI's own codes, which the SDKs check: a
        // failure mid-answer is a `server_error`, or a `rate_limit_exceeded`.
        let code = match code {
            "rate_limit_error" => "rate_limit_exceeded",
            _ => "server_error",
        };
        response["error"] = json!({"code": code, "message": message});
        self.emit(out, "response.failed", json!({"response": response}));
    }
}
