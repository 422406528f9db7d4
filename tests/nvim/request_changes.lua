-- Neovim (0.7+) requests changes to a hunk through the server's code action, driven by
-- tests/test_request_changes_neovim.py.
--
-- Run as: nvim --headless --clean -u NONE -i NONE -c "luafile request_changes.lua"
-- with $LOGIST_NVIM_TEST naming a JSON file: {server, root, file, prompt, comment, result}.
--
-- It registers the client-side command `logist.requestHunkChanges` exactly as
-- doc/protocol.md shows it (vim.ui.input answered with the comment), creates a job on the
-- file, waits for review, picks "Request changes to this hunk..." from
-- `vim.lsp.buf.code_action()`, waits for the job to be back in review, then reads its
-- history with `logist/getJobEvents` pages (the doc's `history` function). What it saw goes
-- into the JSON result file; a Lua error is written there and Neovim exits with :cquit.

local cfg = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv('LOGIST_NVIM_TEST')), '\n'))
local TIMEOUT = cfg.timeout_ms or 30000
local result = { step = 'start', events = {}, titles = {}, history = {}, notified = {} }

local function write_result()
  vim.fn.writefile({ vim.fn.json_encode(result) }, cfg.result)
end

local function step(name)
  result.step = name
  write_result()
end

local function wait_for(what, predicate, timeout)
  if not vim.wait(timeout or TIMEOUT, predicate, 20) then
    error('timed out after ' .. (timeout or TIMEOUT) .. ' ms waiting for ' .. what, 0)
  end
end

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h')
local request = dofile(here .. '/request.lua')(wait_for)
local client_id
local exited = false

local function statuses_after(job_id, index)
  local out = {}
  for i, e in ipairs(result.events) do
    if i > index and e.jobId == job_id and e.status ~= nil then
      table.insert(out, e.status)
    end
  end
  return out
end

local function main()
  step('open file')
  vim.cmd('edit ' .. vim.fn.fnameescape(cfg.file))
  local buf = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(buf)

  step('start server')
  client_id = vim.lsp.start_client({
    name = 'logist',
    cmd = { cfg.server },
    root_dir = cfg.root,
    handlers = {
      ['logist/jobEvent'] = function(_, ev)
        table.insert(result.events, { jobId = ev.jobId, seq = ev.seq, kind = ev.kind, status = ev.status })
      end,
    },
    on_exit = function()
      exited = true
    end,
  })
  wait_for('the server to initialize', function()
    local c = vim.lsp.get_client_by_id(client_id)
    return (c and c.initialized) or exited
  end)
  local client = vim.lsp.get_client_by_id(client_id)
  vim.lsp.buf_attach_client(buf, client_id)

  -- The client-side command, as doc/protocol.md has it; vim.ui.input answers the comment.
  vim.notify = function(msg)
    table.insert(result.notified, msg)
  end
  vim.ui.input = function(opts, on_confirm)
    result.input_prompt = opts.prompt
    on_confirm(cfg.comment)
  end
  vim.lsp.commands["logist.requestHunkChanges"] = function(command, ctx)
    local a = command.arguments[1]
    result.command_argument = a
    vim.ui.input({prompt = ("Changes to %s:%d-%d: "):format(a.path, a.startLine, a.endLine)},
      function(text)
        if not text or text == "" then return end
        vim.lsp.get_client_by_id(ctx.client_id).request("logist/requestChanges",
          {jobId = a.jobId, comments = {{hunkId = a.hunkId, text = text}}},
          function(err) if err then vim.notify(err.message, vim.log.levels.ERROR) end end)
      end)
  end

  step('create job')
  local created = request(client, buf, 'logist/createJob', { prompt = cfg.prompt, uri = uri, agent = 'mock' })
  local job_id = created.jobId
  result.job_id = job_id
  wait_for('review', function()
    return vim.tbl_contains(statuses_after(job_id, 0), 'review')
  end)

  -- As a user does: the hunk's hint shows before the code action is asked for (the
  -- server fills its review caches off its event loop when a job changes).
  step('hint')
  wait_for('the hunk hint diagnostic', function()
    return #vim.diagnostic.get(buf) > 0
  end)

  step('code action')
  local seen = #result.events
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(buf), 0 })
  local offered = false
  vim.ui.select = function(items, opts, on_choice)
    offered = true
    local chosen
    for _, item in ipairs(items) do
      local title = opts.format_item and opts.format_item(item) or item[2].title
      table.insert(result.titles, title)
      if chosen == nil and title:find('Request changes to this hunk', 1, true) then
        chosen = item
      end
    end
    on_choice(chosen)
  end
  vim.lsp.buf.code_action()
  wait_for('the code action menu', function()
    return offered
  end)

  step('wait for review again')
  wait_for('the job back in review', function()
    local after = statuses_after(job_id, seen)
    return vim.tbl_contains(after, 'review') or vim.tbl_contains(after, 'failed')
  end)
  result.statuses_after = statuses_after(job_id, seen)

  step('history')
  local done = false
  local function history(id, after)
    client.request("logist/getJobEvents", {jobId = id, afterSeq = after, limit = 5}, function(err, page)
      if err then result.history_error = err.message; done = true; return end
      for _, ev in ipairs(page.events) do table.insert(result.history, {seq = ev.seq, kind = ev.kind}) end
      if page.next and page.next ~= vim.NIL then history(id, page.next) else done = true end
    end)
  end
  history(job_id, 0)
  wait_for('the history pages', function()
    return done
  end)

  step('shutdown')
  client.stop()
  wait_for('logist-server to exit', function()
    return exited
  end, 10000)
  step('done')
end

local ok, err = xpcall(main, debug.traceback)
result.ok = ok
if not ok then
  result.error = tostring(err)
end
write_result()
if ok then
  vim.cmd('qa!')
else
  if client_id and not exited then
    vim.lsp.stop_client(client_id, true)
  end
  vim.cmd('cquit 1')
end
