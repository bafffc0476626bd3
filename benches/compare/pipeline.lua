-- wrk script: pipeline DEPTH requests per batch on each connection.
-- wrk -c1 -t1 -d5s -s pipeline.lua http://127.0.0.1:PORT/b100 -- DEPTH
-- wrk writes the whole batch, then waits for all DEPTH responses before the next batch
-- (batch pipelining, not a sliding window). Non-2xx responses are counted by wrk itself
-- ("Non-2xx or 3xx responses"); the script fails the run on them.
init = function(args)
   local depth = tonumber(args[1]) or 1
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil)
   end
   req = table.concat(r)
end

request = function()
   return req
end
