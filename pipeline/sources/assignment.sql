-- The assignment service's schema, verbatim from the calendar-domain spec. Run once, by setup.py.
CREATE TABLE assignments (
  id          bigint PRIMARY KEY,
  course_id   bigint NOT NULL,         -- a course of the course service
  title       text NOT NULL,
  description text,                    -- may be large (TOASTed)
  max_score   numeric(6,2),
  opens_at    timestamptz NOT NULL,
  due_at      timestamptz NOT NULL,
  published   boolean NOT NULL DEFAULT true,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
