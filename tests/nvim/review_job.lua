-- Neovim (0.7+) as a real LSP client of logist-server, driven by tests/test_neovim.py.
--
-- Run as: nvim --headless --clean -u NONE -i NONE -c "luafile review_job.lua"
-- with $LOGIST_NVIM_TEST naming a JSON file: {server, file, prompt, range, result, timeout_ms}.
--
-- It opens the file, makes an unsaved edit, starts and attaches the server, creates a job over
-- a range, collects every `logist/jobEvent` until the job is in review, then asks for code
-- actions exactly as `vim.lsp.buf.code_action()` does (vim.ui.select is answered with the
-- "Accept change" action), so Neovim itself sends `workspace/executeCommand` and applies the
-- server's `workspace/applyEdit`. Everything observed goes into the JSON result file; any Lua
-- error is written there too and Neovim exits with :cquit.

local cfg = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv('LOGIST_NVIM_TEST')), '\n'))
local TIMEOUT = cfg.timeout_ms or 30000

local result = {
  step = 'start',
  nvim_version = tostring(vim.version().major) .. '.' .. vim.version().minor .. '.' .. vim.version().patch,
  events = {},
  messages = {},
  progress = {},
  log_messages = {},
  titles = {},
}

local function write_result()
  vim.fn.writefile({ vim.fn.json_encode(result) }, cfg.result)
end

local function step(name)
  result.step = name
  write_result() -- so a hang or a crash still leaves the last step reached on disk
end

local function wait_for(what, predicate, timeout)
  local ok = vim.wait(timeout or TIMEOUT, predicate, 20)
  if not ok then
    error('timed out after ' .. (timeout or TIMEOUT) .. ' ms waiting for ' .. what, 0)
  end
end

local function buffer_lines(buf)
  return vim.api.nvim_buf_get_lines(buf, 0, -1, false)
end

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h')
local request = dofile(here .. '/request.lua')(wait_for)

local client_id
local exited = false

local handlers = {
  ['logist/jobEvent'] = function(_, params)
    table.insert(result.events, {
      jobId = params.jobId,
      seq = params.seq,
      firstSeq = params.firstSeq,
      kind = params.kind,
      status = params.status,
      dataKeys = vim.tbl_keys(params.data or {}),
    })
  end,
  ['window/showMessage'] = function(_, params)
    table.insert(result.messages, params.message)
  end,
  ['window/logMessage'] = function(_, params)
    table.insert(result.log_messages, params.message)
  end,
  ['$/progress'] = function(err, params, ctx, config)
    local value = params.value or {}
    table.insert(result.progress, { token = tostring(params.token), kind = value.kind })
    return vim.lsp.handlers['$/progress'](err, params, ctx, config)
  end,
  ['workspace/executeCommand'] = function(err, res)
    result.execute_command = { error = err and err.message or nil, result = res }
  end,
  ['workspace/applyEdit'] = function(err, params, ctx, config)
    local answer = vim.lsp.handlers['workspace/applyEdit'](err, params, ctx, config)
    result.apply_edit = { label = params.label, applied = answer and answer.applied }
    return answer
  end,
}

local function main()
  step('open file')
  vim.cmd('edit ' .. vim.fn.fnameescape(cfg.file))
  local buf = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(buf)
  result.uri = uri
  result.initial_lines = buffer_lines(buf)

  step('start server')
  client_id = vim.lsp.start_client({
    name = 'logist',
    cmd = { cfg.server },
    root_dir = cfg.root,
    handlers = handlers,
    on_exit = function(code, signal)
      exited = true
      result.server_exit = { code = code, signal = signal }
    end,
  })
  if not client_id then
    error('vim.lsp.start_client returned nil', 0)
  end
  wait_for('the server to initialize', function()
    local c = vim.lsp.get_client_by_id(client_id)
    return (c and c.initialized) or exited
  end)
  if exited then
    error('logist-server exited during initialize: ' .. vim.inspect(result.server_exit), 0)
  end
  local client = vim.lsp.get_client_by_id(client_id)
  result.offset_encoding = client.offset_encoding

  step('attach buffer')
  if not vim.lsp.buf_attach_client(buf, client_id) then
    error('vim.lsp.buf_attach_client failed', 0)
  end

  -- An unsaved edit, sent to the server as didChange (client.request flushes it first).
  step('unsaved edit')
  vim.api.nvim_buf_set_lines(buf, 0, 1, false, { cfg.unsaved_line })
  vim.cmd('let &undolevels = &undolevels') -- close the undo block: the accept is its own step
  result.edited_lines = buffer_lines(buf)

  step('create job')
  local created = request(client, buf, 'logist/createJob', {
    prompt = cfg.prompt,
    uri = uri,
    range = cfg.range,
    agent = 'mock',
  })
  local job_id = created.jobId
  result.job_id = job_id
  result.created_status = created.status

  -- An empty Lua table: Neovim sends `{}` params as `[]`, which must mean "no params".
  step('list jobs')
  result.listed = request(client, buf, 'logist/listJobs', {})

  step('wait for review')
  wait_for('a logist/jobEvent with status review or failed', function()
    for _, e in ipairs(result.events) do
      if e.jobId == job_id and (e.status == 'review' or e.status == 'failed') then
        return true
      end
    end
    return false
  end)

  -- The code action, exactly as `:lua vim.lsp.buf.code_action()` with the cursor on the last
  -- line; the user picks "Accept change" from the menu.
  -- As a user does: the hunk's hint shows before the code action is asked for (the
  -- server fills its review caches off its event loop when a job changes).
  step('hint')
  wait_for('the hunk hint diagnostic', function()
    return #vim.diagnostic.get(buf) > 0
  end)

  step('code action')
  local last = vim.api.nvim_buf_line_count(buf)
  vim.api.nvim_win_set_cursor(0, { last, 0 })
  local offered = false
  vim.ui.select = function(items, opts, on_choice)
    offered = true
    local chosen
    for _, item in ipairs(items) do
      local title = opts.format_item and opts.format_item(item) or item[2].title
      table.insert(result.titles, title)
      if chosen == nil and title:find('Accept change', 1, true) then
        chosen = item
      end
    end
    result.chosen = chosen and chosen[2] or nil
    on_choice(chosen)
  end
  vim.lsp.buf.code_action()
  wait_for('the code action menu (vim.ui.select)', function()
    return offered
  end)
  if result.chosen == nil then
    error('no code action title contains "Accept change": ' .. vim.inspect(result.titles), 0)
  end

  step('wait for the accepted line in the buffer')
  local expected = cfg.expected_line
  wait_for('the line "' .. expected .. '" in the buffer', function()
    local lines = buffer_lines(buf)
    return lines[#lines] == expected
  end)
  wait_for('the workspace/executeCommand response', function()
    return result.execute_command ~= nil
  end)
  result.final_lines = buffer_lines(buf)
  result.modified = vim.bo[buf].modified
  result.buffer_count = #vim.api.nvim_list_bufs()

  -- The accepted change is an ordinary, undoable edit of the live buffer.
  step('undo')
  vim.cmd('silent undo')
  result.undone_lines = buffer_lines(buf)
  vim.cmd('silent redo')
  result.redone_lines = buffer_lines(buf)

  step('shutdown')
  client.stop()
  wait_for('logist-server to exit after shutdown', function()
    return exited
  end, 10000)
  step('done')
end

local ok, err = xpcall(main, debug.traceback)
if ok then
  result.ok = true
  write_result()
  vim.cmd('qa!')
else
  result.ok = false
  result.error = tostring(err)
  write_result()
  if client_id and not exited then
    vim.lsp.stop_client(client_id, true)
  end
  vim.cmd('cquit 1')
end
