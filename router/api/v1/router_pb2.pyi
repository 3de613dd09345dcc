from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("text", "top_k", "multi_intent", "subject")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MULTI_INTENT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    text: str
    top_k: int
    multi_intent: bool
    subject: str
    def __init__(self, text: _Optional[str] = ..., top_k: _Optional[int] = ..., multi_intent: _Optional[bool] = ..., subject: _Optional[str] = ...) -> None: ...

class Alternative(_message.Message):
    __slots__ = ("intent", "score", "example")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    intent: str
    score: float
    example: str
    def __init__(self, intent: _Optional[str] = ..., score: _Optional[float] = ..., example: _Optional[str] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("preprocess_ms", "encode_ms", "score_ms", "total_ms", "queue_ms")
    PREPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    SCORE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    preprocess_ms: float
    encode_ms: float
    score_ms: float
    total_ms: float
    queue_ms: float
    def __init__(self, preprocess_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., score_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., queue_ms: _Optional[float] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("intent", "score", "threshold", "alternatives", "revision", "timings", "reason", "negations", "refused_intents", "matches")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NEGATIONS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_INTENTS_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    intent: str
    score: float
    threshold: float
    alternatives: _containers.RepeatedCompositeFieldContainer[Alternative]
    revision: str
    timings: Timings
    reason: str
    negations: _containers.RepeatedCompositeFieldContainer[Negation]
    refused_intents: _containers.RepeatedScalarFieldContainer[str]
    matches: _containers.RepeatedCompositeFieldContainer[IntentMatch]
    def __init__(self, intent: _Optional[str] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., alternatives: _Optional[_Iterable[_Union[Alternative, _Mapping]]] = ..., revision: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., reason: _Optional[str] = ..., negations: _Optional[_Iterable[_Union[Negation, _Mapping]]] = ..., refused_intents: _Optional[_Iterable[str]] = ..., matches: _Optional[_Iterable[_Union[IntentMatch, _Mapping]]] = ...) -> None: ...

class IntentMatch(_message.Message):
    __slots__ = ("intent", "score", "threshold", "evidence")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    intent: str
    score: float
    threshold: float
    evidence: Evidence
    def __init__(self, intent: _Optional[str] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., evidence: _Optional[_Union[Evidence, _Mapping]] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("text", "start", "end", "field")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    text: str
    start: int
    end: int
    field: str
    def __init__(self, text: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., field: _Optional[str] = ...) -> None: ...

class Negation(_message.Message):
    __slots__ = ("cue", "scope", "cue_start", "cue_end", "scope_start", "scope_end", "refusal", "topic", "topic_start", "topic_end")
    CUE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CUE_START_FIELD_NUMBER: _ClassVar[int]
    CUE_END_FIELD_NUMBER: _ClassVar[int]
    SCOPE_START_FIELD_NUMBER: _ClassVar[int]
    SCOPE_END_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TOPIC_START_FIELD_NUMBER: _ClassVar[int]
    TOPIC_END_FIELD_NUMBER: _ClassVar[int]
    cue: str
    scope: str
    cue_start: int
    cue_end: int
    scope_start: int
    scope_end: int
    refusal: bool
    topic: str
    topic_start: int
    topic_end: int
    def __init__(self, cue: _Optional[str] = ..., scope: _Optional[str] = ..., cue_start: _Optional[int] = ..., cue_end: _Optional[int] = ..., scope_start: _Optional[int] = ..., scope_end: _Optional[int] = ..., refusal: _Optional[bool] = ..., topic: _Optional[str] = ..., topic_start: _Optional[int] = ..., topic_end: _Optional[int] = ...) -> None: ...

class ClassifyBatchRequest(_message.Message):
    __slots__ = ("texts", "top_k", "multi_intent", "subjects")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MULTI_INTENT_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    top_k: int
    multi_intent: bool
    subjects: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., top_k: _Optional[int] = ..., multi_intent: _Optional[bool] = ..., subjects: _Optional[_Iterable[str]] = ...) -> None: ...

class ClassifyStreamRequest(_message.Message):
    __slots__ = ("id", "text", "subject", "top_k", "multi_intent")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MULTI_INTENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    subject: str
    top_k: int
    multi_intent: bool
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., subject: _Optional[str] = ..., top_k: _Optional[int] = ..., multi_intent: _Optional[bool] = ...) -> None: ...

class ClassifyStreamResponse(_message.Message):
    __slots__ = ("id", "result", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    result: ClassifyResponse
    error: str
    def __init__(self, id: _Optional[str] = ..., result: _Optional[_Union[ClassifyResponse, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class ClassifyBatchResponse(_message.Message):
    __slots__ = ("results", "revision", "timings")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ClassifyResponse]
    revision: str
    timings: Timings
    def __init__(self, results: _Optional[_Iterable[_Union[ClassifyResponse, _Mapping]]] = ..., revision: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ...) -> None: ...

class ListIntentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IntentSummary(_message.Message):
    __slots__ = ("name", "description", "example_count", "threshold")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    example_count: int
    threshold: float
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., example_count: _Optional[int] = ..., threshold: _Optional[float] = ...) -> None: ...

class ListIntentsResponse(_message.Message):
    __slots__ = ("intents", "revision")
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    intents: _containers.RepeatedCompositeFieldContainer[IntentSummary]
    revision: str
    def __init__(self, intents: _Optional[_Iterable[_Union[IntentSummary, _Mapping]]] = ..., revision: _Optional[str] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("model_id", "dimension", "intent_count", "example_count", "revision", "default_threshold", "scoring", "version", "max_text_chars", "max_batch_size", "max_top_k", "last_reload", "model", "threshold_source", "watching", "watch_problem", "reload_in_progress", "lint_findings")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    INTENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SCORING_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOP_K_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_SOURCE_FIELD_NUMBER: _ClassVar[int]
    WATCHING_FIELD_NUMBER: _ClassVar[int]
    WATCH_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    RELOAD_IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LINT_FINDINGS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    dimension: int
    intent_count: int
    example_count: int
    revision: str
    default_threshold: float
    scoring: str
    version: str
    max_text_chars: int
    max_batch_size: int
    max_top_k: int
    last_reload: ReloadResponse
    model: str
    threshold_source: str
    watching: bool
    watch_problem: str
    reload_in_progress: bool
    lint_findings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_id: _Optional[str] = ..., dimension: _Optional[int] = ..., intent_count: _Optional[int] = ..., example_count: _Optional[int] = ..., revision: _Optional[str] = ..., default_threshold: _Optional[float] = ..., scoring: _Optional[str] = ..., version: _Optional[str] = ..., max_text_chars: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_top_k: _Optional[int] = ..., last_reload: _Optional[_Union[ReloadResponse, _Mapping]] = ..., model: _Optional[str] = ..., threshold_source: _Optional[str] = ..., watching: _Optional[bool] = ..., watch_problem: _Optional[str] = ..., reload_in_progress: _Optional[bool] = ..., lint_findings: _Optional[_Iterable[str]] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("ok", "revision", "changed", "errors", "trigger", "finished_at_unix", "duration_ms", "gate_results")
    OK_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    GATE_RESULTS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    revision: str
    changed: bool
    errors: _containers.RepeatedScalarFieldContainer[str]
    trigger: str
    finished_at_unix: float
    duration_ms: float
    gate_results: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ok: _Optional[bool] = ..., revision: _Optional[str] = ..., changed: _Optional[bool] = ..., errors: _Optional[_Iterable[str]] = ..., trigger: _Optional[str] = ..., finished_at_unix: _Optional[float] = ..., duration_ms: _Optional[float] = ..., gate_results: _Optional[_Iterable[str]] = ...) -> None: ...

class ListRevisionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RevisionSummary(_message.Message):
    __slots__ = ("revision", "loaded_at_unix", "intent_count", "example_count", "serving", "trigger")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    INTENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    revision: str
    loaded_at_unix: float
    intent_count: int
    example_count: int
    serving: bool
    trigger: str
    def __init__(self, revision: _Optional[str] = ..., loaded_at_unix: _Optional[float] = ..., intent_count: _Optional[int] = ..., example_count: _Optional[int] = ..., serving: _Optional[bool] = ..., trigger: _Optional[str] = ...) -> None: ...

class ListRevisionsResponse(_message.Message):
    __slots__ = ("revisions",)
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[RevisionSummary]
    def __init__(self, revisions: _Optional[_Iterable[_Union[RevisionSummary, _Mapping]]] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: str
    def __init__(self, revision: _Optional[str] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("ok", "revision", "errors")
    OK_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    revision: str
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ok: _Optional[bool] = ..., revision: _Optional[str] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...
