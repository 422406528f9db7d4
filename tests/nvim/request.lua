-- Shared by the Neovim test scripts: an LSP request waited for, loaded with
--   local request = dofile(<this directory> .. '/request.lua')(wait_for)
-- where `wait_for(what, predicate)` is the script's own bounded wait.

return function(wait_for)
  -- Send `method` on `buf`'s client and return its result; an error answer stops the script.
  return function(client, buf, method, params)
    local answer
    client.request(method, params, function(err, res)
      answer = { error = err and (err.message or vim.inspect(err)) or nil, result = res }
    end, buf)
    wait_for('the ' .. method .. ' response', function()
      return answer ~= nil
    end)
    if answer.error then
      error(method .. ' failed: ' .. answer.error, 0)
    end
    return answer.result
  end
end
