-- Neovim (0.7+) as a real LSP client of logist-server, driven by tests/test_neovim_markers.py.
--
-- Run as: nvim --headless --clean -u NONE -i NONE -c "luafile markers.lua"
-- with $LOGIST_NVIM_TEST naming a JSON file: {server, root, file, hunk_line, result, timeout_ms}.
--
-- A job in review (made by the test through the CLI) replaces line `hunk_line` (0-based) of
-- the file. Neovim opens it and waits for the hint diagnostic; types two lines at the top
-- and one right below the hunk, as a user would (Neovim sends incremental didChange
-- notifications), waiting after each edit for the diagnostics published for that very
-- version; reads the code lenses; accepts through the lens's command (Neovim applies the
-- server's workspace/applyEdit); and waits for the markers to vanish. Everything observed
-- goes into the JSON result file.

local cfg = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv('LOGIST_NVIM_TEST')), '\n'))
local TIMEOUT = cfg.timeout_ms or 30000

local result = { step = 'start', publishes = {} }

local function write_result()
  vim.fn.writefile({ vim.fn.json_encode(result) }, cfg.result)
end

local function step(name)
  result.step = name
  write_result()
end

local function wait_for(what, predicate)
  if not vim.wait(TIMEOUT, predicate, 20) then
    error('timed out after ' .. TIMEOUT .. ' ms waiting for ' .. what, 0)
  end
end

local last_publish -- {version, lines}

local handlers = {
  ['textDocument/publishDiagnostics'] = function(err, params, ctx, config)
    local lines = {}
    for _, d in ipairs(params.diagnostics) do
      table.insert(lines, d.range.start.line)
    end
    last_publish = { version = params.version, lines = lines }
    table.insert(result.publishes, last_publish)
    return vim.lsp.handlers['textDocument/publishDiagnostics'](err, params, ctx, config)
  end,
}

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h')
local request = dofile(here .. '/request.lua')(wait_for)

local function main()
  step('open file')
  vim.cmd('edit ' .. vim.fn.fnameescape(cfg.file))
  local buf = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(buf)

  step('start server')
  local exited = false
  local client_id = vim.lsp.start_client({
    name = 'logist',
    cmd = { cfg.server },
    root_dir = cfg.root,
    handlers = handlers,
    flags = { debounce_text_changes = 0 },
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

  -- The diagnostics published for the buffer's current version.
  local function settled()
    local version = vim.lsp.util.buf_versions[buf]
    wait_for('diagnostics for version ' .. tostring(version), function()
      return last_publish ~= nil and last_publish.version == version
    end)
    return last_publish.lines
  end

  step('markers at review')
  wait_for('the hunk marker', function()
    return last_publish ~= nil and #last_publish.lines > 0
  end)
  result.at_review = settled()

  step('type two lines at the top')
  vim.api.nvim_buf_set_lines(buf, 0, 0, false, { 'typed at the top 1', 'typed at the top 2' })
  result.after_top = settled()

  step('type a line right below the hunk')
  local below = cfg.hunk_line + 2 + 1 -- the hunk's line now, plus one
  vim.api.nvim_buf_set_lines(buf, below, below, false, { 'typed below the hunk' })
  result.after_below = settled()
  result.edited_lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)

  step('code lenses')
  local lenses = request(client, buf, 'textDocument/codeLens', { textDocument = { uri = uri } })
  result.lenses = {}
  local accept
  for _, lens in ipairs(lenses or {}) do
    table.insert(result.lenses, { line = lens.range.start.line, title = lens.command.title })
    if lens.command.title:match(': Accept$') then
      accept = lens.command
    end
  end
  if not accept then
    error('no Accept lens: ' .. vim.inspect(lenses), 0)
  end

  step('accept through the lens')
  result.accepted = request(client, buf, 'workspace/executeCommand', {
    command = accept.command,
    arguments = accept.arguments,
  })
  result.final_lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  step('markers vanish')
  result.after_accept = settled()
  result.ok = true
  step('done')
  vim.lsp.stop_client(client_id)
  wait_for('the server to exit', function()
    return exited
  end)
end

local ok, err = pcall(main)
if not ok then
  result.error = tostring(err)
  write_result()
  vim.cmd('cquit 1')
else
  write_result()
  vim.cmd('qall!')
end
